"""Error codes, close codes and the exception every failed call raises (SPEC §3, §6)."""

from __future__ import annotations

from typing import Any


class ErrorCode:
    """The protocol's error codes. Applications may use any other string for their own."""

    METHOD_NOT_FOUND = "METHOD_NOT_FOUND"
    INVALID_PARAMS = "INVALID_PARAMS"
    TIMEOUT = "TIMEOUT"
    CANCELLED = "CANCELLED"
    DISCONNECTED = "DISCONNECTED"
    REFUSED = "REFUSED"
    UNAVAILABLE = "UNAVAILABLE"
    RATE_LIMITED = "RATE_LIMITED"
    OVERLOADED = "OVERLOADED"
    PROTOCOL_ERROR = "PROTOCOL_ERROR"
    INTERNAL = "INTERNAL"


class CloseCode:
    NORMAL = 1000
    GOING_AWAY = 1001
    TOO_BIG = 1009
    REPLACED = 4000
    DUPLICATE_LOGIN = 4001
    PROTOCOL_ERROR = 4002
    HEARTBEAT_TIMEOUT = 4008
    SLOW_READER = 4009
    FLOODED = 4029
    UNAUTHORIZED = 4401
    LOGIN_CONFLICT = 4409
    UNAVAILABLE = 4503


class RpcError(Exception):
    """A call failed: ``code`` (see ErrorCode, or the application's own), ``message``, ``data``.

    Raise it from a handler to answer the caller with that code, message and data; any
    other exception reaches the caller as INTERNAL with no detail.
    """

    def __init__(self, code: str, message: str = "", data: Any = None) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message
        self.data = data

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            wire["data"] = self.data
        return wire

    @classmethod
    def from_wire(cls, err: dict[str, Any]) -> RpcError:
        message = err.get("message")
        return cls(err["code"], message if isinstance(message, str) else "", err.get("data"))


class ProtocolViolation(Exception):
    """The peer broke the wire format: the socket closes 4002 (SPEC §2, §6)."""
