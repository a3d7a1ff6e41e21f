"""Streams (SPEC §12): a method may answer with a stream of items instead of one result.

Each item is a request of the protocol's own, ``$item [callId, value]``, from the producer
to the reader, who answers it once its reader has *taken* the item: the answer is the
credit (the producer keeps at most ``STREAM_WINDOW`` items unanswered, so a slow reader
slows the producer, not the socket), and items are reliable messages like any other (a
stream survives a cut and a resume, every item once, in order). The stream's own call ends
it: its response after the last item, or its error. A reader that stops gives the call up
(``$cancel``); items still waiting or arriving later are answered ``CANCELLED``.

With a server that lists the feature ``items`` (SPEC §11, §12; the client names it in
``$features``), several items may go in one request, ``$items [callId, [value, …]]``,
answered once the reader took them all: the window still counts items, not requests.

The session (session.py) keeps the wire side; this module holds the reader's queue, the
iterator an application reads, and the producer's loop.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import math
from functools import partial
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable

from .errors import ErrorCode, RpcError

if TYPE_CHECKING:
    from .session import Session, _Call

#: The protocol's request carrying one item of a stream: ``[callId, value]``.
ITEM = "$item"
#: Several items of a stream in one request, ``[callId, [value, …]]`` (SPEC §12, version 1.1).
ITEMS = "$items"
#: The optional feature that allows ``$items`` (SPEC §11), named in ``$session`` and ``$features``.
ITEMS_FEATURE = "items"
#: Items a producer sends before the first is answered (SPEC §12; each value of an ``$items`` counts).
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
        #: (item request id, value, last value of that request), in the order they came: an
        #: ``$items`` request is one entry per value, answered when its last one is taken.
        self.items: collections.deque[tuple[int, Any, bool]] = collections.deque()
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
                item_id, value, last = q.items.popleft()
                if last:
                    self._session.answer_item(q, item_id, True)  # the credit: the producer may send more
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
    session's running calls), so ``$cancel`` and the session's end cancel it.

    With a server that takes ``$items``, what the iterator yields before control returns to
    the event loop goes out as one request (no timer: an item waits at most to the end of
    this loop iteration); one value goes as ``$item``."""
    loop = session.loop
    task = asyncio.current_task()
    it: AsyncIterator[Any] = iterable.__aiter__()
    unanswered = 0
    failed: list[RpcError] = []
    wake: asyncio.Future[None] | None = None
    # Items pulled this loop iteration, sent by `flush` when it ends. `batching` drops for
    # good once a batch breaks the server's limits (large items: one `$item` each from then on).
    batch: list[Any] | None = None
    batching = session.peer_items

    def fail(e: RpcError) -> None:
        if not failed:
            failed.append(e)
        if wake is not None and not wake.done():
            wake.set_result(None)  # a producer waiting for credit stops

    def answered(n: int, f: asyncio.Future[Any]) -> None:
        nonlocal unanswered
        unanswered -= n
        if not f.cancelled() and f.exception() is not None:
            fail(f.exception())  # type: ignore[arg-type]  # e.g. CANCELLED: nobody reads it
        elif wake is not None and not wake.done():
            wake.set_result(None)

    def live() -> bool:
        return session.running_task(msg_id) is task and session.closed is None and not failed

    async def window(limit: int) -> None:
        nonlocal wake
        while unanswered > limit and live():
            wake = loop.create_future()
            await wake

    def send(value: Any) -> None:
        item = session.call(ITEM, [msg_id, value], math.inf)
        if item.done():  # refused here: not encodable, or too many calls pending
            e: RpcError = item.exception()  # type: ignore[assignment]
            if e.code == ErrorCode.INVALID_PARAMS:
                session.report(TypeError(f"item of {method} can't be sent: {e.message}"), method)
                e = RpcError(ErrorCode.INTERNAL, "item could not be encoded")
            return fail(e)
        item.add_done_callback(partial(answered, 1))

    def flush() -> None:
        nonlocal batch, batching
        values, batch = batch, None
        if values is None or not live():
            return  # sent already, or the stream stopped meanwhile
        # session.peer_items again: a resume may have landed on a server that does not take `$items`.
        if len(values) > 1 and batching and session.peer_items:
            items = session.call(ITEMS, [msg_id, values], math.inf)
            if not items.done():
                return items.add_done_callback(partial(answered, len(values)))
            if items.exception().code != ErrorCode.INVALID_PARAMS:  # type: ignore[union-attr]
                return fail(items.exception())  # type: ignore[arg-type]  # e.g. OVERLOADED
            batching = False  # past the server's limits together (or one can't be encoded): one by one
        for value in values:
            if not live():
                break
            send(value)

    exhausted = False
    try:
        while live():
            try:
                value = await it.__anext__()
            except StopAsyncIteration:
                exhausted = True
                break
            await window(STREAM_WINDOW - 1)  # values waiting in `batch` count: they are sent
            if not live():
                break
            unanswered += 1
            if not batching:
                send(value)
            elif batch is None:
                batch = [value]
                loop.call_soon(flush)  # runs once this task gives control back to the loop
            else:
                batch.append(value)
        flush()
        await window(0)
    finally:
        # Items pulled before the iterator raised go out before its error (SPEC §12); after
        # a cancel or the session's end flush() sends nothing.
        flush()
        if not exhausted:
            closer: Callable[[], Any] | None = getattr(it, "aclose", None)
            if closer is not None:
                try:
                    await closer()  # the generator's finally runs
                except Exception:
                    pass
    if failed:
        raise failed[0]
