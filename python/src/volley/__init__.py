"""Volley client for Python (asyncio): bidirectional RPC over WebSocket with resume and
exactly-once delivery. See protocol/SPEC.md in the Volley repository for the wire protocol."""

from .client import CloseInfo, Reconnect, VolleyClient, connect
from .codec import Limits
from .errors import CloseCode, ErrorCode, RpcError
from .streams import Stream

__all__ = ["CloseCode", "CloseInfo", "ErrorCode", "Limits", "Reconnect", "RpcError", "Stream", "VolleyClient", "connect"]
__version__ = "0.1.0"
