"""VolleyClient: a session with a Volley server over WebSocket (the ``websockets`` package).

It reconnects by itself with jittered backoff and resumes the session, so calls pending
across a drop complete exactly once (SPEC §5). Refusals of the login arrive as close codes
4401/4409/4503 (it offers the ``volley`` sub-protocol, SPEC §1) or HTTP statuses.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import importlib
import logging
import random
from typing import Any, Callable, Literal, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .codec import NOTIFICATION, Limits, pack
from .errors import CloseCode, ErrorCode, RpcError
from .session import Handler, Session
from .streams import ITEMS_FEATURE, Stream

from websockets.exceptions import ConnectionClosed


def _websockets_connect() -> tuple[Any, str]:
    """websockets' client and the name of its extra-headers argument, across versions."""
    try:  # websockets ≥ 13
        return importlib.import_module("websockets.asyncio.client").connect, "additional_headers"
    except ImportError:  # websockets 10–12 (Debian bookworm: 10.4)
        return importlib.import_module("websockets.client").connect, "extra_headers"


_ws_connect, _HEADERS = _websockets_connect()

log = logging.getLogger("volley")

State = Literal["connecting", "open", "reconnecting", "closed"]

#: Close codes after which reconnecting would not help (SPEC §6).
FINAL_CODES = frozenset(
    {CloseCode.NORMAL, CloseCode.TOO_BIG, CloseCode.REPLACED, CloseCode.DUPLICATE_LOGIN, CloseCode.PROTOCOL_ERROR,
     CloseCode.FLOODED, CloseCode.UNAUTHORIZED, CloseCode.LOGIN_CONFLICT}
)
_REFUSAL_CODES = frozenset({CloseCode.UNAUTHORIZED, CloseCode.LOGIN_CONFLICT, CloseCode.UNAVAILABLE})
_REFUSAL_STATUSES = frozenset({401, 403, 409, 503})


@dataclasses.dataclass(frozen=True)
class Reconnect:
    """Jittered exponential backoff between reconnect attempts (seconds)."""

    initial: float = 0.25
    max: float = 5.0
    factor: float = 2.0
    #: Fraction of each delay that is random (0…1): a restart isn't met by every client at once.
    jitter: float = 0.5
    #: Give up (state "closed") after this many failed attempts in a row; None: never.
    max_attempts: int | None = None

    def delay(self, attempt: int) -> float:
        base = min(self.max, self.initial * self.factor**attempt)
        return base * (1 - min(1.0, max(0.0, self.jitter)) * random.random())


@dataclasses.dataclass(frozen=True)
class CloseInfo:
    code: int
    reason: str = ""
    #: HTTP status of a refused upgrade.
    status: int | None = None


def _connect_error(url: str, info: CloseInfo) -> RpcError:
    """Why the first connection failed: REFUSED (the server said no) or DISCONNECTED."""
    if info.code in _REFUSAL_CODES:
        return RpcError(ErrorCode.REFUSED, f"{url} refused the login (close {info.code}: {info.reason})", {"closeCode": info.code, "reason": info.reason})
    if info.status in _REFUSAL_STATUSES:
        return RpcError(ErrorCode.REFUSED, f"{url} refused the login (HTTP {info.status})", {"status": info.status})
    return RpcError(ErrorCode.DISCONNECTED, f"could not connect to {url} (close {info.code}: {info.reason})", {"closeCode": info.code, "reason": info.reason})


def _status_of(e: BaseException) -> int | None:
    status = getattr(e, "status_code", None)  # websockets < 13: InvalidStatusCode
    if status is None:
        status = getattr(getattr(e, "response", None), "status_code", None)  # InvalidStatus
    return status if isinstance(status, int) else None


def _ms(info: dict[str, Any], key: str, default: float) -> float:
    v = info.get(key)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 2**31 else default


def _reason(text: str) -> str:
    """A close reason fits in 123 bytes of UTF-8."""
    return text.encode()[:120].decode(errors="ignore")


class VolleyClient:
    """A session with a Volley server. Create it inside a running event loop; it dials at once.

    ``await client.wait_open()`` (or ``volley.connect(...)``) waits for the first session.
    Calls made before that wait in the client and go out once the session is confirmed.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        token_in: Literal["query", "header", "protocol"] = "query",
        handlers: Mapping[str, Handler] | None = None,
        timeout: float = 10.0,
        connect_timeout: float = 10.0,
        limits: Limits | None = None,
        reconnect: Reconnect | bool = True,
        heartbeat: float | None = None,
        heartbeat_timeout: float | None = None,
        close_timeout: float = 1.0,
        on_open: Callable[[bool], Any] | None = None,
        on_close: Callable[[CloseInfo], Any] | None = None,
        on_error: Callable[[BaseException, str], Any] | None = None,
    ) -> None:
        self.url = url
        self._token, self._token_in = token, token_in
        self._connect_timeout, self._close_timeout = connect_timeout, close_timeout
        self._reconnect = Reconnect() if reconnect is True else reconnect or None
        self._heartbeat, self._heartbeat_timeout = heartbeat, heartbeat_timeout
        self._on_open, self._on_close = on_open, on_close
        self._on_error = on_error or (lambda e, method: log.error("handler %s failed", method, exc_info=e))
        self.limits = limits or Limits()
        self._session = Session(
            handlers=handlers, limits=self.limits, timeout=timeout,
            on_write=self._wake_writer, on_violation=self._violated,
            on_extension=self._on_extension, on_handler_error=lambda e, m: self._on_error(e, m),
        )
        self._loop = self._session.loop
        self.state: State = "connecting"
        self.close_info: CloseInfo | None = None
        #: The current session's `$session` info (sid, resumed, limits…), None before or after it.
        self.session_info: dict[str, Any] | None = None
        self._opened: asyncio.Future[None] = self._loop.create_future()
        self._opened.add_done_callback(lambda f: f.cancelled() or f.exception())  # no "never retrieved"
        self._closing = False
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        #: Frames taken from the session and not yet handed to the socket.
        self._outbox: collections.deque[bytes] = collections.deque()
        self._ws: Any = None
        self._ended: asyncio.Future[CloseInfo] | None = None
        self._last_received = 0.0
        self._attempt = 0
        #: This session's `$features` named `items` (sent once per session, not on a resume).
        self._items_named = False
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._task = self._loop.create_task(self._run())

    # ---- API ------------------------------------------------------------------------

    async def wait_open(self) -> None:
        """Wait for the first session. Raises RpcError REFUSED (401/409/503, 4401/4409/4503 in
        ``data``) or DISCONNECTED (no server, no `$session` within ``connect_timeout``)."""
        await asyncio.shield(self._opened)

    @property
    def session_id(self) -> str | None:
        return self.session_info["sid"] if self.session_info else None

    def call(self, method: str, *params: Any, timeout: float | None = None) -> asyncio.Future[Any]:
        """Call a server method; await the result. Raises RpcError (code, message, data).

        ``timeout`` (seconds, default the client's) is the call's deadline: TIMEOUT. Cancel
        the future (or the task awaiting it, or use ``asyncio.wait_for``) to give up: the
        server is sent ``$cancel`` and its handler is aborted.
        """
        return self._session.call(method, list(params), timeout)

    def stream(self, method: str, *params: Any, timeout: float | None = None) -> Stream:
        """Call a server method that answers with a stream, and read its items (SPEC §12):
        ``async for x in client.stream("countTo", 50)``. The items come in order, each once,
        across reconnects. Stop early with ``aclose()`` (or ``async with``, or ``break``):
        the server is sent ``$cancel`` and its producer stops. A stream that fails raises
        ``RpcError`` after the items sent before the error. ``timeout`` (seconds) bounds the
        whole stream; by default it has none.
        """
        return self._session.stream(method, list(params), timeout)

    def notify(self, method: str, *params: Any) -> bool:
        """Fire and forget, at most once: False if dropped (no socket up). RpcError INVALID_PARAMS
        if the server would refuse it."""
        return self._session.notify(method, list(params))

    async def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Close for good (1000 ends the session at once); pending calls fail DISCONNECTED."""
        if not self._closing:
            self._closing = True
            self._stopping.set()
            if self._ended is not None:
                self._end(self._ended, CloseInfo(code, reason or "closed by client"))
        await asyncio.shield(self._task)
        if self._background:
            await asyncio.wait(self._background, timeout=self._close_timeout * 3)

    def drop(self) -> None:
        """Drop the socket as a network failure would (tests, "airplane mode"); the session resumes."""
        if self._ended is not None:
            self._end(self._ended, CloseInfo(4999, "dropped by client"))

    async def __aenter__(self) -> VolleyClient:
        await self.wait_open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---- the life of the client: sockets one after another --------------------------

    async def _run(self) -> None:
        info = CloseInfo(1006)
        while not self._closing:
            info = await self._socket()
            self.close_info = info
            self._emit(self._on_close, info)
            never_opened = self.session_info is None and self.state == "connecting"
            r = self._reconnect
            if self._closing or never_opened or r is None or info.code in FINAL_CODES or info.status in (401, 409):
                break
            if r.max_attempts is not None and self._attempt >= r.max_attempts:
                info = CloseInfo(1006, "gave up reconnecting")
                break
            if self.session_info is not None and "window" not in self._timers:
                # The server keeps the session this long; past it, what was pending is lost.
                self._timers["window"] = self._loop.call_later(self.session_info.get("resumeWindowMs", 0) / 1000, self._expired)
            delay = r.delay(self._attempt)
            self._attempt += 1
            self._set_state("reconnecting")
            try:
                await asyncio.wait_for(self._stopping.wait(), delay)
            except asyncio.TimeoutError:
                pass
        self._final(info)

    def _expired(self) -> None:
        self._timers.pop("window", None)
        self.session_info = None
        self._session.reset(RpcError(ErrorCode.DISCONNECTED, "not reconnected within the resume window"))

    def _url(self) -> str:
        parts = urlsplit(self.url)
        query = parse_qsl(parts.query)
        if self._token is not None and self._token_in == "query":
            query.append(("token", self._token))
        if self.session_info is not None:
            query.append(("sid", self.session_info["sid"]))
        return urlunsplit(parts._replace(query=urlencode(query)))

    async def _dial(self) -> Any:
        protocols = ["volley"]  # asks for refusals as close codes (SPEC §1)
        headers = {}
        if self._token is not None and self._token_in == "protocol":
            protocols.append(f"volley.token.{self._token}")
        elif self._token is not None and self._token_in == "header":
            headers["Authorization"] = f"Bearer {self._token}"
        kw: dict[str, Any] = {_HEADERS: headers}
        # max_size: a message over the client's limit is cut at its frame header, unread
        # (websockets then closes 1009 itself); no compression: frames are what SPEC §2 says.
        return await _ws_connect(
            self._url(), subprotocols=protocols, max_size=self.limits.max_message_bytes, compression=None,
            ping_interval=None, open_timeout=None, close_timeout=self._close_timeout, **kw,
        )

    async def _socket(self) -> CloseInfo:
        """Dial, serve the socket until it ends, and say how it ended."""
        dial = self._loop.create_task(asyncio.wait_for(self._dial(), self._connect_timeout))
        stop = self._loop.create_task(self._stopping.wait())
        await asyncio.wait({dial, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if not dial.done():  # close() while dialling
            dial.cancel()
            return CloseInfo(CloseCode.NORMAL, "closed by client")
        try:
            ws = dial.result()
        except asyncio.TimeoutError:
            return CloseInfo(1006, f"no connection within {self._connect_timeout:g} s")
        except Exception as e:
            return CloseInfo(1006, _reason(str(e) or type(e).__name__), _status_of(e))
        ended: asyncio.Future[CloseInfo] = self._loop.create_future()
        self._ws, self._ended = ws, ended
        if self._closing:
            self._end(ended, CloseInfo(CloseCode.NORMAL, "closed by client"))
        self._last_received = self._loop.time()
        self._timers["connect"] = self._loop.call_later(
            self._connect_timeout, self._end, ended, CloseInfo(1006, f"no $session within {self._connect_timeout:g} s")
        )
        reader = self._loop.create_task(self._read(ws, ended))
        writer = self._loop.create_task(self._write(ws))
        try:
            info = await ended
        finally:
            for name in ("connect", "heartbeat"):
                if name in self._timers:
                    self._timers.pop(name).cancel()
            self._ws = self._ended = None
            reader.cancel()
            writer.cancel()
        if self._closing:
            # Deliberate: what is queued goes out first, then the close frame.
            self._outbox.extend(self._session.take_frames())
            try:
                while self._outbox:
                    await ws.send(self._outbox.popleft())
                await asyncio.wait_for(ws.close(info.code, _reason(info.reason)), self._close_timeout * 3)
            except Exception:
                pass
        else:
            # Not waiting for a closing handshake a dead link can't finish. (Reliable
            # messages in the outbox are kept by the session; the rest is lost with the socket.)
            self._outbox.clear()
            task = self._loop.create_task(self._close_ws(ws, info))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        self._session.detach()
        return info

    async def _close_ws(self, ws: Any, info: CloseInfo) -> None:
        # The link is dead (4008), broken (4002) or gone: send the close frame, wait little.
        ws.close_timeout = min(self._close_timeout, 0.25)
        try:
            await ws.close(info.code if info.code >= 4000 else 4999, _reason(info.reason))
        except Exception:
            pass

    def _end(self, ended: asyncio.Future[CloseInfo], info: CloseInfo) -> None:
        if not ended.done():
            ended.set_result(info)

    async def _read(self, ws: Any, ended: asyncio.Future[CloseInfo]) -> None:
        try:
            while not ended.done():
                data = await ws.recv()
                if ended.done():
                    return
                self._last_received = self._loop.time()
                if isinstance(data, str):
                    return self._end(ended, CloseInfo(CloseCode.PROTOCOL_ERROR, "text frames are not part of the protocol"))
                self._session.receive(data)
        except ConnectionClosed as e:
            rcvd, sent = e.rcvd, e.sent
            if sent is not None and sent.code == CloseCode.TOO_BIG and not getattr(e, "rcvd_then_sent", False):
                self._end(ended, CloseInfo(CloseCode.TOO_BIG, f"a message over {self.limits.max_message_bytes} bytes (maxMessageBytes)"))
            else:
                self._end(ended, CloseInfo(rcvd.code, rcvd.reason) if rcvd is not None else CloseInfo(1006, "connection lost"))
        except Exception as e:  # pragma: no cover - transport errors
            self._end(ended, CloseInfo(1006, _reason(repr(e))))

    def _wake_writer(self) -> None:
        self._wake.set()

    async def _write(self, ws: Any) -> None:
        # Everything written in one loop iteration goes out together, in frames within the
        # server's limits (SPEC §2, §8).
        outbox = self._outbox
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                outbox.extend(self._session.take_frames())
                while outbox:
                    await ws.send(outbox.popleft())
        except ConnectionClosed:
            pass

    def _violated(self, reason: str) -> None:
        """The server broke the protocol: close 4002, final (a server that did it once would again)."""
        if self._ended is not None:
            self._end(self._ended, CloseInfo(CloseCode.PROTOCOL_ERROR, reason))

    # ---- session --------------------------------------------------------------------

    def _on_extension(self, method: str, params: list[Any]) -> None:
        if method == "$session" and params and isinstance(params[0], dict) and isinstance(params[0].get("sid"), str):
            self._on_session(params[0])

    def _on_session(self, info: dict[str, Any]) -> None:
        ended = self._ended
        if ended is None or ended.done() or self._session.attached:
            return
        held = self.session_info
        resumed = info.get("resumed") is True and held is not None and held["sid"] == info["sid"]
        if held is not None and not resumed:
            self._session.reset(RpcError(ErrorCode.DISCONNECTED, "session expired before the reconnect"))
        self.session_info = info
        wire_limits = {"maxMessageBytes": info.get("maxMessageBytes"), **(info.get("limits") or {})}
        self._session.peer_limits = Limits.from_wire(wire_limits)
        info["resumeWindowMs"] = _ms(info, "resumeWindowMs", 0)
        for name in ("window", "connect"):
            if name in self._timers:
                self._timers.pop(name).cancel()
        self._attempt = 0
        # What the server supports is listed on every socket (SPEC §11): a resume on an older
        # node may not take `$items`, and one on a newer node was not told we use it.
        features = info.get("features")
        offered = isinstance(features, list) and ITEMS_FEATURE in features
        after_ack: list[bytes] = []
        if not resumed:
            self._items_named = offered
            # `$limits` right after the first `$ack` of a session, only if ours differ from the
            # floor; then `$features`, only if it names something.
            announced = self.limits.to_wire()
            if announced:
                after_ack.append(pack([NOTIFICATION, "$limits", [announced]]))
            if self._items_named:
                after_ack.append(pack([NOTIFICATION, "$features", [[ITEMS_FEATURE]]]))
        self._session.peer_items = offered and self._items_named
        self._session.attach(*after_ack)
        interval = self._heartbeat if self._heartbeat is not None else _ms(info, "heartbeatMs", 10_000) / 1000
        if interval > 0:
            timeout = self._heartbeat_timeout or 2.5 * interval
            self._last_received = self._loop.time()
            self._timers["heartbeat"] = self._loop.call_later(min(interval, timeout / 2), self._beat, ended, interval, timeout)
        self._set_state("open")
        if not self._opened.done():
            self._opened.set_result(None)
        self._emit(self._on_open, resumed)

    def _beat(self, ended: asyncio.Future[CloseInfo], interval: float, timeout: float) -> None:
        # Liveness is judged on messages (SPEC §7): the server answers every `$ping`.
        if ended.done():
            return
        if self._loop.time() - self._last_received > timeout:
            return self._end(ended, CloseInfo(CloseCode.HEARTBEAT_TIMEOUT, "no message within the heartbeat timeout"))
        self._session.heartbeat()
        self._timers["heartbeat"] = self._loop.call_later(min(interval, timeout / 2), self._beat, ended, interval, timeout)

    def _final(self, info: CloseInfo) -> None:
        self._closing = True
        for t in self._timers.values():
            t.cancel()
        self._timers.clear()
        self._session.close(RpcError(ErrorCode.DISCONNECTED, f"connection closed ({info.code}{': ' + info.reason if info.reason else ''})"))
        was_connecting = self.state == "connecting"
        self._set_state("closed")
        if was_connecting and not self._opened.done():
            self._opened.set_exception(_connect_error(self.url, info))

    def _emit(self, callback: Callable[[Any], Any] | None, arg: Any) -> None:
        """An application callback: what it raises is logged, never taken for the server's fault."""
        if callback is not None:
            try:
                callback(arg)
            except Exception:
                log.exception("volley: %r raised", callback)

    def _set_state(self, state: State) -> None:
        self.state = state


async def connect(url: str, **options: Any) -> VolleyClient:
    """Connect and wait for the session (see VolleyClient for the options)."""
    client = VolleyClient(url, **options)
    try:
        await client.wait_open()
    except BaseException:
        await client.close()
        raise
    return client
