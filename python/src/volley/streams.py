"""Streams (SPEC §12): a method may answer with a stream of items instead of one result.

Each item is a request of the protocol's own, ``$item [callId, value]``, from the producer
to the reader, who answers it once its reader has *taken* the item: the answer is the
credit (the producer keeps at most ``STREAM_WINDOW`` items unanswered, so a slow reader
slows the producer, not the socket), and items are reliable messages like any other (a
stream survives a cut and a resume, every item once, in order). The stream's own call ends
it: its response after the last item, or its error. A reader that stops gives the call up
(``$cancel``); items still waiting or arriving later are answered ``CANCELLED``.

The session (session.py) keeps the wire side; this module holds the reader's queue, the
iterator an application reads, and the producer's loop.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import math
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable

from .errors import ErrorCode, RpcError

if TYPE_CHECKING:
    from .session import Session, _Call

#: The protocol's request carrying one item of a stream: ``[callId, value]``.
ITEM = "$item"
#: Items a producer sends before the first is answered (SPEC §12).
STREAM_WINDOW = 16


def is_stream(v: Any) -> bool:
    """Does a handler's result stream (an async iterator or iterable, not an awaitable)?"""
    return hasattr(v, "__aiter__") and not inspect.isawaitable(v)


class StreamQueue:
    """The reader's side of one stream: items received and not yet taken, and how it ends.
    Held by the session (by the call's id); the application holds the ``Stream`` around it."""

    __slots__ = ("call", "items", "ended", "error", "waiter")

    def __init__(self, call: _Call | None) -> None:
        self.call = call
        #: (item request id, value), in the order they came.
        self.items: collections.deque[tuple[int, Any]] = collections.deque()
        self.ended = False
        self.error: RpcError | None = None
        self.waiter: asyncio.Future[None] | None = None

    def end(self, error: RpcError | None) -> None:
        if not self.ended:
            self.ended, self.error = True, error
            self.wake()

    def wake(self) -> None:
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)


class Stream:
    """The items a call answers with, read with ``async for`` (``client.stream(...)``).

    Stopping early gives the call up (``$cancel``): ``await stream.aclose()``, ``async with``,
    or breaking out of ``async for`` (the stream is given up when it is dropped, at once in
    CPython when nothing else holds it). A stream that fails raises its ``RpcError`` after
    the items sent before the error.
    """

    def __init__(self, session: Session, queue: StreamQueue, fut: asyncio.Future[Any]) -> None:
        self._session, self._queue, self._fut = session, queue, fut

    def __aiter__(self) -> Stream:
        return self

    async def __anext__(self) -> Any:
        q = self._queue
        while True:
            if q.items:
                item_id, value = q.items.popleft()
                self._session.answer_item(q, item_id, True)  # the credit: the producer may send one more
                return value
            if q.ended:
                if q.error is not None:
                    raise RpcError(q.error.code, q.error.message, q.error.data)
                raise StopAsyncIteration
            if q.waiter is not None:
                raise RuntimeError("another task is reading this stream")
            q.waiter = self._session.loop.create_future()
            try:
                await q.waiter
            finally:
                q.waiter = None

    async def aclose(self) -> None:
        """Stop reading: the call is given up (``$cancel``) and the producer stops."""
        self.give_up()

    def give_up(self) -> None:
        """``aclose()`` from synchronous code (an upload's reads when their call ends)."""
        if not self._queue.ended:
            self._session.stop_stream(self._queue, self._fut)

    async def __aenter__(self) -> Stream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __del__(self) -> None:
        # `break` out of `async for` drops the iterator without closing it (unlike a
        # JavaScript for-await): give the call up here, or the producer would run on.
        if not self._queue.ended:
            try:
                self._session.stop_stream(self._queue, self._fut)
            except Exception:  # pragma: no cover - interpreter or loop shutting down
                pass


async def produce(session: Session, msg_id: int, method: str, iterable: Any) -> None:
    """Send ``iterable``'s items as the answer to the peer's call ``msg_id``, at most
    ``STREAM_WINDOW`` unanswered; return once every item was answered (the session then
    ends the call), raise to end it with an error. Runs as the call's task (in the
    session's running calls), so ``$cancel`` and the session's end cancel it."""
    task = asyncio.current_task()
    it: AsyncIterator[Any] = iterable.__aiter__()
    unanswered = 0
    failed: list[RpcError] = []
    wake: asyncio.Future[None] | None = None

    def answered(f: asyncio.Future[Any]) -> None:
        nonlocal unanswered
        unanswered -= 1
        if not f.cancelled() and f.exception() is not None and not failed:
            failed.append(f.exception())  # type: ignore[arg-type]  # e.g. CANCELLED: nobody reads it
        if wake is not None and not wake.done():
            wake.set_result(None)

    def live() -> bool:
        return session.running_task(msg_id) is task and session.closed is None and not failed

    async def window(limit: int) -> None:
        nonlocal wake
        while unanswered > limit and live():
            wake = session.loop.create_future()
            await wake

    exhausted = False
    try:
        while live():
            try:
                value = await it.__anext__()
            except StopAsyncIteration:
                exhausted = True
                break
            await window(STREAM_WINDOW - 1)
            if not live():
                break
            item = session.call(ITEM, [msg_id, value], math.inf)
            if item.done():  # refused here: not encodable, or too many calls pending
                e: RpcError = item.exception()  # type: ignore[assignment]
                if e.code == ErrorCode.INVALID_PARAMS:
                    session.report(TypeError(f"item of {method} can't be sent: {e.message}"), method)
                    e = RpcError(ErrorCode.INTERNAL, "item could not be encoded")
                failed.append(e)
                break
            unanswered += 1
            item.add_done_callback(answered)
        await window(0)
    finally:
        if not exhausted:
            closer: Callable[[], Any] | None = getattr(it, "aclose", None)
            if closer is not None:
                try:
                    await closer()  # the generator's finally runs
                except Exception:
                    pass
    if failed:
        raise failed[0]
