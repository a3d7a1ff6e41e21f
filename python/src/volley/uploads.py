"""Uploads (SPEC §12, "Uploads"): a call may pass async iterables as params.

The caller sends the call wrapped, ``$call [method, params, at]`` (``at``: the indexes of
the params that are uploads, nil in their place), so nothing in the application's values
marks one. The callee's handler gets, at each index, an async iterable that reads the
upload only when it is read: the callee calls back ``$upload [callId, index]``, and the
caller answers that call as a stream of the iterable's items (streams.py: credit, cancel,
errors and resume as for any stream). An upload lasts as long as its call: the caller
stops producing when the call settles, the callee gives up its reads when it answers.

The session (session.py) routes ``$call`` and ``$upload`` here; this module holds the
caller's record of a call's uploads, and the callee's readers.
"""

from __future__ import annotations

import asyncio
import inspect
import weakref
from typing import TYPE_CHECKING, Any, AsyncIterator

from .errors import ErrorCode, RpcError
from .streams import Stream, is_stream

if TYPE_CHECKING:
    from .session import Session

#: The request carrying a call with uploads: ``[method, params, at]``.
CALL = "$call"
#: The callee reading one upload: ``[callId, index]``, answered as a stream.
UPLOAD = "$upload"


def is_upload(v: Any) -> bool:
    """Is a param an upload (an async iterable)?"""
    return is_stream(v)


class Uploads:
    """The caller's side of one call's uploads, until the call settles."""

    __slots__ = ("method", "iterables", "serving")

    def __init__(self, method: str, iterables: dict[int, Any]) -> None:
        self.method = method
        #: By param index; each removed when it is read (an upload is read once).
        self.iterables = iterables
        #: The ``$upload`` calls being answered: (request id, its producer's task).
        self.serving: list[tuple[int, asyncio.Task[Any]]] = []


def wrap(method: str, params: list[Any]) -> tuple[list[Any], dict[int, Any]] | None:
    """``$call``'s params for a call with uploads, and the uploads by index; None without any."""
    at = [i for i, p in enumerate(params) if is_upload(p)]
    if not at:
        return None
    wire = [None if i in at else p for i, p in enumerate(params)]
    return [method, wire, at], {i: params[i] for i in at}


def check_call(session: Session, params: list[Any]) -> tuple[str, list[Any], list[int]] | dict[str, Any]:
    """A ``$call``'s ``(method, params, at)``, or the error to answer it with."""
    bad = lambda why: {"code": ErrorCode.INVALID_PARAMS, "message": why}  # noqa: E731
    if len(params) != 3:
        return bad("$call takes [method, params, uploads]")
    method, args, at = params
    if not isinstance(method, str) or not method or not isinstance(args, list) or not isinstance(at, list) or not at:
        return bad("$call takes [method, params, uploads]")
    if len(method.encode("utf-8", "surrogatepass")) > session.limits.max_method_length:
        return bad(f"method name longer than {session.limits.max_method_length} bytes")
    if len(args) > session.limits.max_params:
        return bad(f"more than {session.limits.max_params} params")
    last = -1
    for i in at:
        # Ascending indexes of nil params: nothing read twice, nothing of the caller's overwritten.
        if type(i) is not int or i <= last or i >= len(args) or args[i] is not None:
            return bad("uploads must be ascending indexes of nil params")
        last = i
    return method, list(args), at


class Reads:
    """The uploads one call's handler may read, and the reads it opened: given up when the call ends."""

    def __init__(self, session: Session, call_id: int, method: str) -> None:
        self._session, self._call_id, self.method = session, call_id, method
        self.closed = False
        self._opened: set[int] = set()
        # Weak: a reader dropped by `break` gives its read up at once (Stream.__del__).
        self._open: list[weakref.ref[Stream]] = []

    def reader(self, index: int) -> Reader:
        return Reader(self, index)

    def open(self, index: int) -> AsyncIterator[Any]:
        if self.closed:
            return _Failing(RpcError(ErrorCode.CANCELLED, f"{self.method} has ended, its uploads with it"))
        if index in self._opened:
            return _Failing(RpcError(ErrorCode.INVALID_PARAMS, "an upload is read once"))
        self._opened.add(index)
        s = self._session.stream(UPLOAD, [self._call_id, index])
        self._open.append(weakref.ref(s))
        return s

    def close(self) -> None:
        """The call ended: reads still open are given up (``$cancel``: the caller's producer stops)."""
        if self.closed:
            return
        self.closed = True
        for ref in self._open:
            s = ref()
            if s is not None:
                s.give_up()
        self._open.clear()


class Reader:
    """What a handler gets in an upload's place: read it with ``async for``, once."""

    __slots__ = ("_reads", "_index")

    def __init__(self, reads: Reads, index: int) -> None:
        self._reads, self._index = reads, index

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._reads.open(self._index)


class _Failing:
    def __init__(self, err: RpcError) -> None:
        self._err = err

    def __aiter__(self) -> _Failing:
        return self

    async def __anext__(self) -> Any:
        raise self._err


async def settled(awaitable: Any, reads: Reads) -> Any:
    """An async handler's result, its reads given up once it is known (after its stream, for a stream)."""
    try:
        result = await awaitable
    except BaseException:
        reads.close()
        raise
    return after(result, reads)


def after(result: Any, reads: Reads) -> Any:
    if is_stream(result):
        return _closing(result, reads)
    reads.close()
    return result


async def _closing(source: Any, reads: Reads) -> AsyncIterator[Any]:
    """A handler's stream that reads uploads while it produces: they end when it does."""
    it = source.__aiter__()
    try:
        while True:
            try:
                item = await it.__anext__()
            except StopAsyncIteration:
                return
            yield item
    finally:
        reads.close()
        closer = getattr(it, "aclose", None)
        if closer is not None and inspect.iscoroutinefunction(closer):
            try:
                await closer()
            except Exception:
                pass
