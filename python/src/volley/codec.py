"""Values on the wire (SPEC §2): msgpack via the ``msgpack`` package, and a scan that
measures each message from its bytes before anything is decoded.

Decoding is where a hostile message costs: 1 MiB of 0x90 bytes is a million empty lists.
The scan reads headers only (str, bin and ext payloads are skipped by their length), so it
refuses such a message from its bytes (too many values, too deep, a type Volley does not
carry, an integer past ±(2^53−1)) and, since it knows where the message ends, refuses that
one message and goes on with the frame. The same scan checks what this side encodes, so
nothing leaves that the receiver would refuse: one implementation of the rules both ways.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from typing import Any, NamedTuple

import msgpack

from .errors import ErrorCode, ProtocolViolation, RpcError

REQUEST, RESPONSE, NOTIFICATION = 0, 1, 2
#: A message whose type is an integer other than 0, 1, 2: from a later version, ignored (SPEC §11).
LATER_TYPE = -2
MAX_ID = 0xFFFFFFFF
MAX_SAFE = 2**53 - 1


@dataclasses.dataclass(frozen=True)
class Limits:
    """Receive limits (SPEC §8). The defaults are the floor every receiver accepts."""

    max_message_bytes: int = 1024 * 1024
    max_messages_per_frame: int = 256
    max_method_length: int = 128
    max_params: int = 32
    max_depth: int = 32
    max_elements: int = 100_000
    max_incoming_pending: int = 1024
    #: Calls from here waiting for replies; more fail locally with OVERLOADED (not announced).
    max_outgoing_pending: int = 4096

    def to_wire(self, only_changed: bool = True) -> dict[str, int]:
        """camelCase names as ``$session`` and ``$limits`` carry them (changed ones only by default)."""
        out = {}
        for f in dataclasses.fields(self):
            if f.name == "max_outgoing_pending":
                continue
            v = getattr(self, f.name)
            if not only_changed or v != f.default:
                out[_camel(f.name)] = v
        return out

    @classmethod
    def from_wire(cls, wire: Any) -> Limits:
        """The limits a peer announced; unknown keys and non-numbers are ignored."""
        known = {_camel(f.name): f.name for f in dataclasses.fields(cls)}
        kw = {}
        if isinstance(wire, dict):
            for k, v in wire.items():
                if k in known and type(v) is int and v >= 1:
                    kw[known[k]] = v
        return cls(**kw)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(w.title() for w in rest)


DEFAULT_LIMITS = Limits()


# ---- encoding ---------------------------------------------------------------------------

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


def _default(obj: Any) -> Any:
    if isinstance(obj, _dt.datetime):
        # Exact to the microsecond (msgpack's own conversion goes through a float).
        # A naive datetime is taken as UTC.
        d = obj - (_EPOCH if obj.tzinfo else _EPOCH.replace(tzinfo=None))
        return msgpack.Timestamp(d.days * 86400 + d.seconds, d.microseconds * 1000)
    raise TypeError(f"a {type(obj).__name__} cannot be sent (SPEC §2 allows nil, bool, int, float, str, bytes, list, dict, datetime)")


_packer = msgpack.Packer(default=_default, use_bin_type=True, datetime=False)


def pack(value: Any) -> bytes:
    """msgpack bytes of ``value``; TypeError/ValueError/OverflowError for what msgpack can't write."""
    try:
        out: bytes = _packer.pack(value)
        return out
    except BaseException:
        _packer.reset()
        raise


def encode(message: list[Any], limits: Limits) -> bytes:
    """Encode one message and hold it to the receiver's ``limits``; RpcError INVALID_PARAMS if it breaks them."""
    try:
        b = pack(message)
    except (TypeError, ValueError, OverflowError) as e:
        raise RpcError(ErrorCode.INVALID_PARAMS, str(e)) from None
    scanned = scan(b, 0, limits)
    if scanned.refused:
        raise RpcError(ErrorCode.INVALID_PARAMS, scanned.refused)
    if len(b) > limits.max_message_bytes:
        raise RpcError(ErrorCode.INVALID_PARAMS, f"message is {len(b)} bytes, over the {limits.max_message_bytes}-byte limit")
    return b


# ---- decoding ---------------------------------------------------------------------------


def decode(b: bytes | memoryview) -> Any:
    """One message's bytes (already scanned) to Python values; timestamps become aware datetimes."""
    return msgpack.unpackb(b, raw=False, strict_map_key=False, timestamp=3, use_list=True)


class Scanned(NamedTuple):
    end: int
    #: 0 request, 1 response, 2 notification, LATER_TYPE for another integer; -1 when the
    #: envelope is not an array whose first element is an integer.
    kind: int
    #: A request's or response's id when it is an integer in 0..2^32−1, else -1.
    id: int
    #: The first rule the message breaks, or None.
    refused: str | None


class Truncated(ProtocolViolation):
    """The bytes end inside a value: the frame is lost, not one message."""


# Header bytes (type byte included) of the forms 0xc0…0xdf; payloads are added apart.
_HEAD = bytes([1, 1, 1, 1, 2, 3, 5, 3, 4, 6, 5, 9, 2, 3, 5, 9, 2, 3, 5, 9, 2, 2, 2, 2, 2, 2, 3, 5, 3, 5, 3, 5])
# Forms whose payload length is in the header: (offset of the length, its size).
_SIZED = {0xC4: 1, 0xD9: 1, 0xC5: 2, 0xDA: 2, 0xC6: 4, 0xDB: 4, 0xC7: 1, 0xC8: 2, 0xC9: 4}
_FIXEXT = {0xD4: 1, 0xD5: 2, 0xD6: 4, 0xD7: 8, 0xD8: 16}


def _int_at(b: bytes | memoryview, p: int) -> int | None:
    """The integer at p in any msgpack integer form, or None."""
    c = b[p]
    if c < 0x80:
        return c
    if c >= 0xE0:
        return c - 0x100
    if 0xCC <= c <= 0xD3:
        size = 1 << ((c - 0xCC) & 3)
        return int.from_bytes(b[p + 1 : p + 1 + size], "big", signed=c >= 0xD0)
    return None


def _payload(b: bytes | memoryview, p: int, c: int) -> int:
    """Bytes of str/bin/ext payload after the header of form c at p (0 for other forms)."""
    size = _SIZED.get(c)
    if size is not None:
        return int.from_bytes(b[p + 1 : p + 1 + size], "big")
    return _FIXEXT.get(c, 0)


def _skip(b: bytes | memoryview, p: int, pending: int) -> int:
    """Offset past ``pending`` more values from p, without looking at what they are."""
    n = len(b)
    while pending > 0:
        if p >= n:
            raise Truncated("truncated msgpack")
        c = b[p]
        pending -= 1
        if c < 0x80 or c >= 0xE0:
            p += 1
        elif c < 0x90:
            pending += (c & 0xF) * 2
            p += 1
        elif c < 0xA0:
            pending += c & 0xF
            p += 1
        elif c < 0xC0:
            p += 1 + (c & 0x1F)
        else:
            head = _HEAD[c - 0xC0]
            if p + head > n:
                raise Truncated("truncated msgpack")
            if c >= 0xDC:
                count = int.from_bytes(b[p + 1 : p + head], "big")
                pending += count * 2 if c >= 0xDE else count
            p += head + _payload(b, p, c)
    if p > n:
        raise Truncated("truncated msgpack")
    return p


def scan(b: bytes | memoryview, start: int, limits: Limits) -> Scanned:
    """Measure the message at ``start`` against ``limits`` (SPEC §2, §8). Raises Truncated."""
    n_bytes = len(b)
    max_elements, max_depth = limits.max_elements, limits.max_depth
    p = start
    stack: list[tuple[int, bool]] = []  # the outer containers: values each still owed, is it a map
    level = -1  # the envelope is level 0
    left = 1  # the message itself, read as if in a container of one
    in_map = False
    announced = 1
    kind = env_len = msg_id = -1
    refused: str | None = None
    while True:
        while left == 0 and level > 0:
            left, in_map = stack.pop()
            level -= 1
        if left == 0:
            break
        if level > 0:
            # Below the envelope, fixints and fixstrs need no check, not even as map keys.
            while left > 0 and p < n_bytes:
                c = b[p]
                if c < 0x80 or c >= 0xE0:
                    p += 1
                elif 0xA0 <= c < 0xC0:
                    p += 1 + (c & 0x1F)
                else:
                    break
                left -= 1
            if left == 0:
                continue
        if p >= n_bytes:
            raise Truncated("truncated msgpack")
        c = b[p]
        bad_key = False
        if in_map:
            bad_key = left % 2 == 0 and not (c < 0x80 or 0xA0 <= c < 0xC0 or c >= 0xE0 or 0xCC <= c <= 0xD3 or 0xD9 <= c <= 0xDB)
        elif level == 0 and env_len >= 0:
            slot = env_len - left
            if slot == 0:
                v = _int_at(b, p)
                kind = -1 if v is None else v if v in (0, 1, 2) else LATER_TYPE
            elif slot == 1 and kind in (REQUEST, RESPONSE):
                v = _int_at(b, p)
                if v is not None and 0 <= v <= MAX_ID:
                    msg_id = v
            elif kind in (REQUEST, NOTIFICATION):
                refused = _envelope_slot(b, p, c, slot - (kind == REQUEST), limits)
        left -= 1
        count = -1  # for an array or map header: the values inside
        is_map = False
        if c < 0x80 or c >= 0xE0:
            p += 1
        elif c < 0x90:
            count, is_map = (c & 0xF) * 2, True
            p += 1
        elif c < 0xA0:
            count = c & 0xF
            p += 1
        elif c < 0xC0:
            p += 1 + (c & 0x1F)
        else:
            head = _HEAD[c - 0xC0]
            if p + head > n_bytes:
                raise Truncated("truncated msgpack")
            if c == 0xC1:
                refused = refused or "the byte 0xc1 is not a msgpack value"
            elif c in _FIXEXT or 0xC7 <= c <= 0xC9:
                size = _payload(b, p, c)
                t = b[p + head - 1]
                if not (t == 0xFF and size in (4, 8, 12)):
                    refused = refused or (
                        f"a timestamp of {size} bytes is not a msgpack timestamp" if t == 0xFF else f"msgpack extension type {t - 256 if t > 127 else t} is not allowed"
                    )
                p += size
            elif c == 0xCF or c == 0xD3:
                v = int.from_bytes(b[p + 1 : p + 9], "big", signed=c == 0xD3)
                if not -MAX_SAFE <= v <= MAX_SAFE:
                    refused = refused or "an integer beyond ±(2^53−1) is not allowed"
            elif c >= 0xDC:
                count = int.from_bytes(b[p + 1 : p + head], "big")
                if c >= 0xDE:
                    count, is_map = count * 2, True
            else:
                p += _payload(b, p, c)
            p += head
        if bad_key:
            refused = refused or "map keys must be strings or integers"
        if count >= 0 and refused is None:
            if count > n_bytes - p:
                raise Truncated("truncated msgpack")
            if level + 1 > max_depth:
                refused = f"nested deeper than {max_depth}"
            elif announced + count > max_elements:
                refused = f"more than {max_elements} values in one message"
            else:
                announced += count
                if level == -1 and not is_map:
                    env_len = count
                if count > 0:
                    stack.append((left, in_map))
                    level += 1
                    left, in_map = count, is_map
        if refused is not None:
            # Nothing more to check: only where the message ends.
            owed = left + sum(x for x, _ in stack) + max(count, 0)
            p = _skip(b, p, owed)
            break
    if p > n_bytes:
        raise Truncated("truncated msgpack")
    return Scanned(p, kind if env_len >= 0 else -1, msg_id, refused)


def _envelope_slot(b: bytes | memoryview, p: int, c: int, slot: int, limits: Limits) -> str | None:
    """The method name (slot 1) and params (slot 2) of a request or notification, by their headers."""
    if slot == 1:
        n = c & 0x1F if 0xA0 <= c < 0xC0 else _payload(b, p, c) if c in (0xD9, 0xDA, 0xDB) else -1
        if n > limits.max_method_length:
            return f"method name longer than {limits.max_method_length}"
    elif slot == 2:
        n = c & 0xF if 0x90 <= c < 0xA0 else int.from_bytes(b[p + 1 : p + 1 + (2 if c == 0xDC else 4)], "big") if c in (0xDC, 0xDD) else -1
        if n > limits.max_params:
            return f"more than {limits.max_params} params"
    return None


def split_frame(frame: bytes, limits: Limits) -> list[Scanned]:
    """Scan every message of a frame; ProtocolViolation (4002) if the frame as a whole is bad."""
    if not frame:
        raise ProtocolViolation("empty frame")
    out: list[Scanned] = []
    p, n = 0, len(frame)
    while p < n:
        if len(out) >= limits.max_messages_per_frame:
            raise ProtocolViolation(f"more than {limits.max_messages_per_frame} messages in one frame")
        s = scan(frame, p, limits)
        out.append(s)
        p = s.end
    return out


def check_shape(m: Any) -> str | None:
    """Why a decoded message is malformed (SPEC §3), or None."""
    if not isinstance(m, list) or not m:
        return "message must be an array"
    kind = m[0]
    if type(kind) is not int:  # not a bool either: True == 1 in Python
        return "message type must be an integer"
    if kind == REQUEST or kind == RESPONSE:
        if len(m) != 4:
            return "request and response must have 4 elements"
        if type(m[1]) is not int or not 0 <= m[1] <= MAX_ID:
            return "id must be a uint32"
        if kind == RESPONSE:
            err = m[2]
            if err is not None and not (isinstance(err, dict) and isinstance(err.get("code"), str)):
                return "response error must be nil or a map with a string code"
            return None
        method, params = m[2], m[3]
    elif kind == NOTIFICATION:
        if len(m) != 3:
            return "notification must have 3 elements"
        method, params = m[1], m[2]
    else:
        return "unknown message type"  # not reached: the scan sets later types aside
    if not isinstance(method, str) or not method:
        return "method must be a non-empty string"
    if not isinstance(params, list):
        return "params must be an array"
    return None
