"""The call engine of one session, without I/O: calls both ways, deadlines, cancellation,
and exactly-once across sockets by sequence numbers (SPEC §3–§5).

The client hands it frames (``receive``), attaches it to a socket once ``$session`` came
(``attach``) and detaches it when the socket drops; it collects what to send with
``take_frames`` (everything written in one loop iteration goes out together, split within
the peer's limits).

Exactly-once (SPEC §5): requests and responses are numbered 1, 2, 3… per session in the
order they are sent and kept until the peer's ``$ack [n]`` covers them; the messages
received and processed are counted (a request counts when its handler starts). On a
resumed socket each side sends ``$ack [received]`` first, sends nothing reliable until the
peer's first ``$ack``, then re-sends what that ``$ack`` did not cover, in order.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import math
from functools import partial
from typing import Any, Callable, Mapping

from .codec import DEFAULT_LIMITS, LATER_TYPE, NOTIFICATION, REQUEST, RESPONSE, Limits, check_shape, decode, encode, pack, split_frame
from .errors import ErrorCode, ProtocolViolation, RpcError
from .streams import ITEM, ITEMS, STREAM_WINDOW, Stream, StreamQueue, is_stream, produce
from .uploads import CALL, UPLOAD, Reads, Uploads, after, check_call, settled, wrap

#: Send ``$ack`` after this many reliable messages received since the last one…
ACK_EVERY_MESSAGES = 128
#: …or this many bytes of frames (SPEC §5.3).
ACK_EVERY_BYTES = 256 * 1024

PING = pack([NOTIFICATION, "$ping", []])
Handler = Callable[..., Any]


class _Call:
    """A call from here waiting for its response."""

    __slots__ = ("id", "method", "fut", "deadline", "timeout", "seq")

    def __init__(self, id: int, method: str, fut: asyncio.Future[Any], deadline: float, timeout: float, seq: int) -> None:
        self.id, self.method, self.fut, self.deadline, self.timeout, self.seq = id, method, fut, deadline, timeout, seq


class Session:
    def __init__(
        self,
        *,
        handlers: Mapping[str, Handler] | None,
        limits: Limits,
        timeout: float,
        on_write: Callable[[], None],
        on_violation: Callable[[str], None],
        on_extension: Callable[[str, list[Any]], None],
        on_handler_error: Callable[[BaseException, str], None],
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.limits = limits
        #: What the peer accepts: the floor until it announces its own ($session limits).
        self.peer_limits = DEFAULT_LIMITS
        #: The peer takes `$items` (SPEC §11: it listed the feature, and this side named it).
        self.peer_items = False
        self.handlers = dict(handlers or {})
        self._signatures: dict[str, inspect.Signature | None] = {}
        self.timeout = timeout
        self._on_write, self._on_violation = on_write, on_violation
        self._on_extension, self._on_handler_error = on_extension, on_handler_error
        self.closed: RpcError | None = None
        self.violated: str | None = None
        self.attached = False
        self._ever_attached = False
        #: On a resumed socket, until the peer's first $ack: reliable messages wait (kept).
        self._resyncing = False
        self._queue: list[bytes] = []
        self._calls: dict[int, _Call] = {}
        self._next_id = 0
        # One timer for every deadline, armed for the earliest (not a timer per call).
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        #: Calls from the peer whose handlers run, by id (for $cancel and duplicates).
        self._running: dict[int, asyncio.Task[Any]] = {}
        #: Streams this side reads, by the id of their call (streams.py).
        self._streams: dict[int, StreamQueue] = {}
        #: Items received and not yet taken by their reader, by the item's request id: they
        #: count toward max_incoming_pending like running calls until taken (an `$items`
        #: request counts once, as a running call does, until its last value is taken).
        self._held: dict[int, StreamQueue] = {}
        #: Uploads of calls from here, by call id, until each call settles (uploads.py).
        self._uploads: dict[int, Uploads] = {}
        self._notes: set[asyncio.Task[Any]] = set()
        self._new_numbering()

    def _new_numbering(self) -> None:
        self.sent = self.peer_acked = self.received = self.acked_received = self.bytes_since_ack = 0
        #: Sent and not yet acknowledged: (seq, bytes, request id or -1), seq peer_acked+1 first.
        self._kept: collections.deque[tuple[int, bytes, int]] = collections.deque()
        #: Seqs of given-up requests still kept: `$cancel` follows their re-send.
        self._cancel_owed: set[int] = set()
        #: Ids of given-up requests the peer already had: `$cancel` after the resync.
        self._owed_cancels: list[int] = []

    @property
    def pending(self) -> int:
        """Calls from here waiting for a response."""
        return len(self._calls)

    @property
    def running(self) -> int:
        """Calls from the peer whose handlers are running, and stream items waiting to be taken."""
        return len(self._running) + len(self._held)

    def running_task(self, msg_id: int) -> asyncio.Task[Any] | None:
        return self._running.get(msg_id)

    def report(self, exc: BaseException, method: str) -> None:
        self._on_handler_error(exc, method)

    # ---- outgoing ---------------------------------------------------------------------

    def call(self, method: str, params: list[Any], timeout: float | None = None) -> asyncio.Future[Any]:
        return self._start(method, params, timeout)[0]

    def _start(self, method: str, params: list[Any], timeout: float | None) -> tuple[asyncio.Future[Any], _Call | None]:
        fut: asyncio.Future[Any] = self.loop.create_future()
        error = self._call_error(method)
        # Params that are async iterables are uploads: the call goes as `$call` (uploads.py).
        wrapped = wrap(method, params) if error is None else None
        if wrapped is not None and len(params) > self.peer_limits.max_params:
            error = RpcError(ErrorCode.INVALID_PARAMS, f"more than {self.peer_limits.max_params} params")
        if error is None:
            msg_id = self._allocate_id()
            try:
                data = encode([REQUEST, msg_id, CALL if wrapped else method, wrapped[0] if wrapped else params], self.peer_limits)
            except RpcError as e:
                error = e
        if error is not None:
            fut.set_exception(error)
            return fut, None
        seq = self._send_reliable(data, msg_id)
        t = self.timeout if timeout is None else timeout
        call = _Call(msg_id, method, fut, self.loop.time() + t, t, seq)
        self._calls[msg_id] = call
        if call.deadline < self._timer_at:
            self._arm(call.deadline)
        fut.add_done_callback(partial(self._call_done, call))
        if wrapped is not None:
            up = self._uploads[msg_id] = Uploads(method, wrapped[1])
            fut.add_done_callback(partial(self._uploads_ended, msg_id, up))
        return fut, call

    # ---- uploads (uploads.py) -------------------------------------------------------------

    def _uploads_ended(self, msg_id: int, up: Uploads, _fut: asyncio.Future[Any]) -> None:
        """The call settled (answered, timed out, cancelled, the session ended): its uploads end with it."""
        if self._uploads.get(msg_id) is up:
            del self._uploads[msg_id]
        up.iterables.clear()  # never read: nothing was started, nothing to stop
        for upload_id, task in up.serving:
            if self._running.get(upload_id) is task:
                del self._running[upload_id]
                task.cancel()  # its producer stops; the iterator's aclose() runs

    def _on_upload(self, msg_id: int, params: list[Any]) -> None:
        """`$upload [callId, index]`: answered as a stream of that upload, or INVALID_PARAMS."""
        cid, index = (params[0], params[1]) if len(params) == 2 else (None, None)
        up = self._uploads.get(cid) if type(cid) is int else None
        iterable = up.iterables.pop(index, None) if up is not None and type(index) is int else None
        if iterable is None:
            what = f"no upload {str(index)[:12]} of call {str(cid)[:12]} to read"
            return self._reply_error(msg_id, {"code": ErrorCode.INVALID_PARAMS, "message": what})
        assert up is not None
        self._run(msg_id, UPLOAD, produce(self, msg_id, up.method, iterable))
        up.serving.append((msg_id, self._running[msg_id]))

    def _on_call(self, msg_id: int, params: list[Any]) -> None:
        """`$call [method, params, at]`: checked as a request, the uploads in place as readers, run as `method`."""
        checked = check_call(self, params)
        if isinstance(checked, dict):
            return self._reply_error(msg_id, checked)
        method, args, at = checked
        handler = None if method.startswith("$") else self.handlers.get(method)
        if handler is None:
            return self._reply_error(msg_id, {"code": ErrorCode.METHOD_NOT_FOUND, "message": f"no method {method}"})
        reads = Reads(self, msg_id, method)
        for i in at:
            args[i] = reads.reader(i)
        bad = self._bind(method, handler, args)
        if bad is not None:
            return self._reply_error(msg_id, {"code": ErrorCode.INVALID_PARAMS, "message": bad})
        self._invoke(msg_id, method, handler, args, reads)

    # ---- streams this side reads (streams.py) ---------------------------------------------

    def stream(self, method: str, params: list[Any], timeout: float | None = None) -> Stream:
        """Call ``method`` and read its answer as a stream; no deadline unless ``timeout``."""
        fut, call = self._start(method, params, math.inf if timeout is None else timeout)
        queue = StreamQueue(call)
        if call is not None:
            self._streams[call.id] = queue
        fut.add_done_callback(partial(self._stream_ended, queue))
        return Stream(self, queue, fut)

    def _stream_ended(self, queue: StreamQueue, fut: asyncio.Future[Any]) -> None:
        if queue.call is not None and self._streams.get(queue.call.id) is queue:
            del self._streams[queue.call.id]
        queue.end(None if fut.cancelled() else fut.exception())  # type: ignore[arg-type]

    def _on_item(self, msg_id: int, params: list[Any], many: bool = False) -> None:
        """`$item [callId, value]`, or with `many` `$items [callId, [value, …]]`: queued for its
        reader, or CANCELLED if nobody reads that stream."""
        values = params[1] if len(params) == 2 else None
        # At most a window's worth: more would be items the producer may not send unanswered.
        if many and not (isinstance(values, list) and type(params[0]) is int and 1 <= len(values) <= STREAM_WINDOW):
            return self._reply_error(msg_id, {"code": ErrorCode.INVALID_PARAMS, "message": f"$items takes [callId, [1 to {STREAM_WINDOW} values]]"})
        cid = params[0] if len(params) == 2 and type(params[0]) is int else None
        queue = None if cid is None else self._streams.get(cid)
        if queue is None or queue.ended or self._calls.get(cid) is not queue.call:  # type: ignore[arg-type]
            # A plain call() of a streaming method, a reader that stopped, or a call that ended.
            return self._reply_error(msg_id, {"code": ErrorCode.CANCELLED, "message": "nobody reads this stream"})
        self._held[msg_id] = queue
        if many:
            assert values is not None
            # One entry per value, all of the same request: answered when the last is taken.
            queue.items.extend((msg_id, v, i == len(values) - 1) for i, v in enumerate(values))
        else:
            queue.items.append((msg_id, values, True))
        queue.wake()

    def answer_item(self, queue: StreamQueue, item_id: int, taken: bool) -> None:
        """Answer an item: taken (the credit), or CANCELLED because the reader stopped."""
        if self._held.get(item_id) is not queue:
            return  # the session ended meanwhile (a new one knows nothing of it)
        del self._held[item_id]
        if taken:
            if self.closed is None:
                self._send_reliable(pack([RESPONSE, item_id, None, None]), -1)
        else:
            self._reply_error(item_id, {"code": ErrorCode.CANCELLED, "message": "the reader stopped"})

    def stop_stream(self, queue: StreamQueue, fut: asyncio.Future[Any]) -> None:
        """The reader stopped: the call is given up ($cancel), what waits is answered CANCELLED."""
        call = queue.call
        if call is not None:
            if self._calls.get(call.id) is call:
                del self._calls[call.id]
                self._cancel_remote(call)
            if self._streams.get(call.id) is queue:
                del self._streams[call.id]
        queue.end(None)
        while queue.items:
            self.answer_item(queue, queue.items.popleft()[0], False)
        fut.cancel()

    def _call_error(self, method: str) -> RpcError | None:
        if self.closed is not None:
            return RpcError(self.closed.code, self.closed.message)
        if not isinstance(method, str) or not method:
            return RpcError(ErrorCode.INVALID_PARAMS, "method must be a non-empty string")
        if len(self._calls) >= self.limits.max_outgoing_pending:
            return RpcError(ErrorCode.OVERLOADED, f"more than {self.limits.max_outgoing_pending} calls pending")
        return None

    def _allocate_id(self) -> int:
        """uint32 ids, sequential mod 2^32, skipping ids still pending."""
        i = self._next_id
        while i in self._calls:
            i = (i + 1) & 0xFFFFFFFF
        self._next_id = (i + 1) & 0xFFFFFFFF
        return i

    def notify(self, method: str, params: list[Any]) -> bool:
        """Fire and forget; at most once: False if dropped (no socket, or resyncing)."""
        if self.closed is not None:
            return False
        data = encode([NOTIFICATION, method, params], self.peer_limits)  # raises INVALID_PARAMS
        if not self.attached or self._resyncing:
            return False
        self._write(data)
        return True

    def heartbeat(self) -> None:
        """`$ack` if anything arrived since the last one, then `$ping` (SPEC §5.3, §7)."""
        if not self.attached or self.closed is not None:
            return
        if self.received != self.acked_received:
            self._send_ack()
        self._write(PING)

    def _send_reliable(self, data: bytes, request_id: int) -> int:
        self.sent += 1
        self._kept.append((self.sent, data, request_id))
        if self.attached and not self._resyncing:
            self._write(data)
        return self.sent

    def _send_ack(self) -> None:
        self.acked_received, self.bytes_since_ack = self.received, 0
        self._write(pack([NOTIFICATION, "$ack", [self.received]]))

    def _write(self, data: bytes) -> None:
        self._queue.append(data)
        if len(self._queue) == 1:
            self._on_write()

    def take_frames(self) -> list[bytes]:
        """What was written since the last take, in frames within the peer's limits."""
        queue, self._queue = self._queue, []
        max_n, max_b = self.peer_limits.max_messages_per_frame, self.peer_limits.max_message_bytes
        frames: list[bytes] = []
        cur: list[bytes] = []
        size = 0
        for m in queue:
            if cur and (len(cur) >= max_n or size + len(m) > max_b):
                frames.append(b"".join(cur))
                cur, size = [], 0
            cur.append(m)
            size += len(m)
        if cur:
            frames.append(b"".join(cur))
        return frames

    # ---- deadlines and giving up --------------------------------------------------------

    def _arm(self, at: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._timer_at = None, at
        if at < math.inf:
            self._timer = self.loop.call_at(at, self._sweep)

    def _sweep(self) -> None:
        self._timer, self._timer_at = None, math.inf
        now = self.loop.time() + 0.001  # call_at may fire a clock tick early
        due = [c for c in self._calls.values() if c.deadline <= now]
        nxt = min((c.deadline for c in self._calls.values() if c.deadline > now), default=math.inf)
        self._arm(nxt)
        for c in due:
            if self._calls.get(c.id) is c:
                del self._calls[c.id]
                c.fut.set_exception(RpcError(ErrorCode.TIMEOUT, f"{c.method} timed out after {c.timeout:g} s"))
                self._cancel_remote(c)

    def _call_done(self, call: _Call, fut: asyncio.Future[Any]) -> None:
        # Cancelled by the caller (Future.cancel, task cancellation, asyncio.wait_for).
        if fut.cancelled() and self._calls.get(call.id) is call:
            del self._calls[call.id]
            self._cancel_remote(call)

    def _cancel_remote(self, call: _Call) -> None:
        """The caller gave up: `$cancel` now, or after the request's re-send, or after the resync."""
        if self.closed is not None:
            return
        if self.attached and not self._resyncing:
            self._write(pack([NOTIFICATION, "$cancel", [call.id]]))
        elif call.seq > self.peer_acked:
            self._cancel_owed.add(call.seq)
        else:
            self._owed_cancels.append(call.id)

    # ---- incoming -----------------------------------------------------------------------

    def receive(self, frame: bytes) -> None:
        """One WebSocket message from the peer (SPEC §2: one or more msgpack values)."""
        if self.closed is not None or self.violated is not None:
            return
        try:
            scanned = split_frame(frame, self.limits)
        except ProtocolViolation as e:
            return self._violation(str(e))
        self.bytes_since_ack += len(frame)
        view = memoryview(frame)
        start = 0
        for s in scanned:
            begin, start = start, s.end
            if s.kind == LATER_TYPE:
                continue  # a message type of a later version: ignored, not counted (SPEC §11)
            refused = s.refused
            if refused is None:
                try:
                    m = decode(view[begin : s.end])
                except Exception as e:  # e.g. invalid UTF-8 in a str
                    refused = f"undecodable msgpack: {e}"
                else:
                    why = check_shape(m)
                    if why is not None:
                        if s.kind == REQUEST and s.id >= 0 and not self._busy(s.id):
                            self._reply_error(s.id, {"code": ErrorCode.PROTOCOL_ERROR, "message": why})
                        return self._violation(why)
                    self._dispatch(m)
            if refused is not None:
                # Refused undecoded: answered or dropped alone when it can be (SPEC §2).
                if s.kind == REQUEST and s.id >= 0:
                    self.received += 1
                    if self._busy(s.id):
                        return self._violation(f"request id {s.id} is already pending")
                    self._reply_error(s.id, {"code": ErrorCode.INVALID_PARAMS, "message": refused})
                elif s.kind == RESPONSE and s.id >= 0:
                    self.received += 1
                    self._settle(s.id, None, RpcError(ErrorCode.PROTOCOL_ERROR, f"response refused: {refused}"))
                elif s.kind != NOTIFICATION:
                    return self._violation(refused)
            if self.closed is not None or self.violated is not None:
                return
        since = self.received - self.acked_received
        if self.attached and since and (since >= ACK_EVERY_MESSAGES or self.bytes_since_ack >= ACK_EVERY_BYTES):
            self._send_ack()

    def _violation(self, reason: str) -> None:
        self.violated = reason
        self._on_violation(reason)

    def _dispatch(self, m: list[Any]) -> None:
        kind = m[0]
        if kind == RESPONSE:
            self.received += 1
            err = m[2]
            self._settle(m[1], m[3], None if err is None else RpcError.from_wire(err))
        elif kind == REQUEST:
            self.received += 1  # counted when its handler starts (SPEC §5.2)
            self._on_request(m[1], m[2], m[3])
        else:
            self._on_notification(m[1], m[2])

    def _settle(self, msg_id: int, result: Any, error: RpcError | None) -> None:
        call = self._calls.pop(msg_id, None)  # a late one (after its deadline or cancel) is dropped
        if call is None or call.fut.done():
            return
        if error is None:
            call.fut.set_result(result)
        else:
            call.fut.set_exception(error)

    def _bind(self, method: str, handler: Handler, params: list[Any]) -> str | None:
        """Why ``params`` don't fit the handler's signature, or None."""
        if method not in self._signatures:
            try:
                self._signatures[method] = inspect.signature(handler)
            except (TypeError, ValueError):
                self._signatures[method] = None
        sig = self._signatures[method]
        if sig is not None:
            try:
                sig.bind(*params)
            except TypeError as e:
                return f"{method}: {e}"
        return None

    def _busy(self, msg_id: int) -> bool:
        """Is a request with this id still pending here (a handler, or an item not yet taken)?"""
        return msg_id in self._running or msg_id in self._held

    def _on_request(self, msg_id: int, method: str, params: list[Any]) -> None:
        if self._busy(msg_id):
            return self._violation(f"request id {msg_id} is already pending")
        handler = None if method.startswith("$") else self.handlers.get(method)
        if handler is None and method not in (ITEM, ITEMS, CALL, UPLOAD):
            return self._reply_error(msg_id, {"code": ErrorCode.METHOD_NOT_FOUND, "message": f"no method {method}"})
        if len(self._running) + len(self._held) >= self.limits.max_incoming_pending:
            return self._reply_error(msg_id, {"code": ErrorCode.OVERLOADED, "message": f"more than {self.limits.max_incoming_pending} calls running"})
        if handler is None:
            # A stream's item (streams.py); a call with uploads, or the callee reading one (uploads.py).
            if method in (ITEM, ITEMS):
                return self._on_item(msg_id, params, method == ITEMS)
            return self._on_call(msg_id, params) if method == CALL else self._on_upload(msg_id, params)
        bad = self._bind(method, handler, params)
        if bad is not None:
            return self._reply_error(msg_id, {"code": ErrorCode.INVALID_PARAMS, "message": bad})
        self._invoke(msg_id, method, handler, params)

    def _invoke(self, msg_id: int, method: str, handler: Handler, params: list[Any], reads: Reads | None = None) -> None:
        """Run a handler and answer: its result, its stream, or its error. `reads`: its uploads, given up once it answered."""
        try:
            result = handler(*params)
        except Exception as e:
            if reads is not None:
                reads.close()
            return self._respond_error(msg_id, method, e)
        if reads is not None:
            result = settled(result, reads) if inspect.isawaitable(result) else after(result, reads)
        if is_stream(result):
            result = produce(self, msg_id, method, result)  # its items, then the call's end
        if inspect.isawaitable(result):
            self._run(msg_id, method, result)
        else:
            self._respond(msg_id, method, result)

    def _run(self, msg_id: int, method: str, awaitable: Any) -> None:
        task = asyncio.ensure_future(awaitable)
        self._running[msg_id] = task
        task.add_done_callback(partial(self._finished, msg_id, method))

    def _finished(self, msg_id: int, method: str, task: asyncio.Task[Any]) -> None:
        if self._running.get(msg_id) is not task:
            return  # cancelled by the caller or the session ended: nobody listens
        del self._running[msg_id]
        if task.cancelled():
            return self._reply_error(msg_id, {"code": ErrorCode.INTERNAL, "message": "handler was cancelled"})
        exc = task.exception()
        if exc is not None:
            self._respond_error(msg_id, method, exc)
        elif is_stream(task.result()):  # an async handler that returned a stream
            self._run(msg_id, method, produce(self, msg_id, method, task.result()))
        else:
            self._respond(msg_id, method, task.result())

    def _respond(self, msg_id: int, method: str, result: Any) -> None:
        if self.closed is not None:
            return
        try:
            data = encode([RESPONSE, msg_id, None, result], self.peer_limits)
        except RpcError as e:
            # A result the peer would refuse (a type, its limits) would cost it the socket.
            self._on_handler_error(TypeError(f"result of {method} can't be sent: {e.message}"), method)
            return self._reply_error(msg_id, {"code": ErrorCode.INTERNAL, "message": "result could not be encoded"})
        self._send_reliable(data, -1)

    def _respond_error(self, msg_id: int, method: str, exc: BaseException) -> None:
        if isinstance(exc, RpcError):
            return self._reply_error(msg_id, exc.to_wire())
        self._on_handler_error(exc, method)
        self._reply_error(msg_id, {"code": ErrorCode.INTERNAL, "message": "internal error"})

    def _reply_error(self, msg_id: int, error: dict[str, Any]) -> None:
        if self.closed is not None:
            return
        try:
            data = encode([RESPONSE, msg_id, error, None], self.peer_limits)
        except RpcError:  # error data that can't be sent: the code and message alone
            data = encode([RESPONSE, msg_id, {"code": str(error["code"]), "message": str(error.get("message", ""))}, None], self.peer_limits)
        self._send_reliable(data, -1)

    def _on_notification(self, method: str, params: list[Any]) -> None:
        if method.startswith("$"):
            arg = params[0] if params else None
            if method == "$ack":
                self._on_ack(arg)
            elif method == "$cancel":
                task = self._running.pop(arg, None) if type(arg) is int else None
                if task is not None:
                    task.cancel()  # the handler sees CancelledError; no response goes out
                elif type(arg) is int:
                    self._held.pop(arg, None)  # an item given up: no answer when it is taken
            else:
                self._on_extension(method, params)  # $session, $pong, $trace…; unknown ones are ignored
            return
        handler = self.handlers.get(method)
        if handler is None or self._bind(method, handler, params) is not None:
            return  # unknown or ill-fitting notifications are dropped (no reply to send)
        if len(self._notes) >= self.limits.max_incoming_pending:
            return  # as many async notification handlers running as calls may: dropped (at most once)
        try:
            result = handler(*params)
        except Exception as e:
            return self._on_handler_error(e, method)
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._notes.add(task)
            task.add_done_callback(partial(self._note_done, method))

    def _note_done(self, method: str, task: asyncio.Task[Any]) -> None:
        self._notes.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._on_handler_error(task.exception(), method)  # type: ignore[arg-type]

    def _on_ack(self, n: Any) -> None:
        if type(n) is not int or n < self.peer_acked or n > self.sent:
            return self._violation(f"impossible $ack {n!r} (acknowledged {self.peer_acked}, sent {self.sent})")
        kept = self._kept
        while kept and kept[0][0] <= n:
            seq, _, request_id = kept.popleft()
            if seq in self._cancel_owed:  # the peer had it when we gave it up offline
                self._cancel_owed.discard(seq)
                self._owed_cancels.append(request_id)
        self.peer_acked = n
        if self._resyncing:
            self._resync()

    def _resync(self) -> None:
        """Re-send what the peer's `$ack` did not cover, each given-up request followed by its `$cancel`."""
        self._resyncing = False
        for seq, data, request_id in self._kept:
            self._write(data)
            if seq in self._cancel_owed:
                self._cancel_owed.discard(seq)
                self._write(pack([NOTIFICATION, "$cancel", [request_id]]))
        owed, self._owed_cancels = self._owed_cancels, []
        for request_id in owed:
            if request_id not in self._calls:  # a reused id belongs to a new call
                self._write(pack([NOTIFICATION, "$cancel", [request_id]]))

    # ---- sockets ------------------------------------------------------------------------

    def attach(self, *after_ack: bytes) -> None:
        """A socket carries this session now: `$ack [received]` first (then `after_ack`, e.g. `$limits`, `$features`).
        On the session's first socket what is kept goes out at once; on a resumed one it
        waits for the peer's first `$ack`."""
        if self.closed is not None or self.attached:
            return
        self.attached = True
        self._send_ack()
        for data in after_ack:
            self._write(data)
        if self._ever_attached:
            self._resyncing = True
        else:
            self._ever_attached = True
            self._resync()  # as if the peer had said `$ack [0]`

    def detach(self) -> None:
        """The socket is gone; the session may resume: calls, handlers and kept messages stay."""
        self.attached = self._resyncing = False
        self._queue.clear()
        self.violated = None

    def reset(self, reason: RpcError) -> None:
        """The session is gone (a new one starts): pending calls fail, handlers are cancelled."""
        self._fail_all(reason)
        self._new_numbering()
        self.attached = self._ever_attached = self._resyncing = False

    def close(self, reason: RpcError) -> None:
        """Final: pending and later calls fail with ``reason``."""
        if self.closed is None:
            self.closed = reason
            self._fail_all(reason)

    def _fail_all(self, reason: RpcError) -> None:
        self._queue.clear()
        calls, self._calls = self._calls, {}
        self._arm(math.inf)
        for c in calls.values():
            if not c.fut.done():
                c.fut.set_exception(RpcError(reason.code, reason.message, reason.data))
        running, self._running = self._running, {}
        for task in running.values():
            task.cancel()
        self._held.clear()  # items not taken: the readers still get them, nobody is answered
        self._streams.clear()  # their calls failed above: each stream ends with that error
