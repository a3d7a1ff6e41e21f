"""Codec and engine tests without a server: python3 -m unittest discover -s python/tests -v"""

from __future__ import annotations

import asyncio
import sys
import time
import unittest
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import websockets  # noqa: E402

from volley import Limits, RpcError, VolleyClient  # noqa: E402
from volley.codec import Truncated, decode, encode, pack, scan, split_frame  # noqa: E402
from volley.session import Session  # noqa: E402


def messages(frames: list[bytes]) -> list[Any]:
    out = []
    for f in frames:
        start = 0
        for s in split_frame(f, Limits(max_messages_per_frame=10_000)):
            out.append(decode(f[start : s.end]))
            start = s.end
    return out


class ScanTest(unittest.TestCase):
    def refused(self, value_hex: str, limits: Limits = Limits()) -> str | None:
        return scan(bytes.fromhex("9302a46e6f746591" + value_hex), 0, limits).refused

    def test_types_and_integers(self) -> None:
        self.assertIsNone(self.refused("d7ff1d5353005fee6600"))  # timestamp 64
        self.assertIn("extension type 1", self.refused("d40100") or "")
        self.assertIn("0xc1", self.refused("c1") or "")
        self.assertIn("2^53", self.refused("cf0020000000000000") or "")
        self.assertIsNone(self.refused("cf001fffffffffffff"))
        self.assertIn("map keys", self.refused("81c0c0") or "")
        self.assertIsNone(self.refused("8101a161"))  # int keys are fine

    def test_depth_elements_params_method(self) -> None:
        tight = Limits(max_depth=3)
        self.assertIsNone(self.refused("9191c0", tight))  # params 1, then 2, 3
        self.assertIn("deeper than 3", self.refused("919191c0", tight) or "")
        self.assertIn("more than 5 values", self.refused("96000000000000", Limits(max_elements=5)) or "")
        self.assertIn("params", scan(pack([2, "m", list(range(33))]), 0, Limits()).refused or "")
        self.assertIn("method name", scan(pack([0, 1, "m" * 129, []]), 0, Limits()).refused or "")

    def test_refused_at_the_header_without_reading_what_it_holds(self) -> None:
        # 1 MiB of empty arrays in one array: refused from its header, in no time.
        b = pack([2, "note", [[[]] * (1024 * 1024)]])
        t0 = time.perf_counter()
        s = scan(b, 0, Limits(max_message_bytes=4 << 20))
        self.assertIn("values in one message", s.refused or "")
        self.assertEqual(s.end, len(b))
        # Linear, not a decode: ~150 ms on a quiet machine; the bound only catches a blow-up.
        self.assertLess(time.perf_counter() - t0, 5)

    def test_a_refused_message_is_skipped_alone(self) -> None:
        frame = pack([2, "note", [b"\x00" * 10, {"a": [1, 2]}]]) + bytes.fromhex("9302a46e6f746591d40100") + pack([2, "ok", []])
        got = split_frame(frame, Limits())
        self.assertEqual([s.refused is None for s in got], [True, False, True])
        self.assertEqual(got[-1].end, len(frame))

    def test_frame_rules(self) -> None:
        with self.assertRaises(Truncated):
            split_frame(pack([2, "note", ["abc"]])[:-1], Limits())
        with self.assertRaises(Exception):
            split_frame(b"", Limits())
        with self.assertRaises(Exception):
            split_frame(pack([2, "a", []]) * 3, Limits(max_messages_per_frame=2))

    def test_encode_refuses_what_the_receiver_would(self) -> None:
        for bad in ({1, 2}, 2**60, 2**70, object()):
            with self.assertRaises(RpcError) as e:
                encode([0, 1, "echo", [bad]], Limits())
            self.assertEqual(e.exception.code, "INVALID_PARAMS")
        with self.assertRaises(RpcError):
            encode([0, 1, "echo", [b"x" * 100]], Limits(max_message_bytes=64))
        self.assertEqual(encode([0, 1, "echo", [2**53 - 1]], Limits())[-9:].hex(), "cf001fffffffffffff")


class EngineTest(unittest.IsolatedAsyncioTestCase):
    def session(self, **kw: Any) -> Session:
        self.violations: list[str] = []
        self.errors: list[BaseException] = []
        return Session(handlers=kw.pop("handlers", {}), limits=kw.pop("limits", Limits()), timeout=kw.pop("timeout", 10.0),
                       on_write=lambda: None, on_violation=self.violations.append, on_extension=lambda m, p: None,
                       on_handler_error=lambda e, m: self.errors.append(e))

    async def test_calls_wait_for_the_session_then_go_out_after_ack(self) -> None:
        s = self.session()
        fut = s.call("add", [1, 2])
        self.assertEqual(s.take_frames(), [])  # nothing before $session
        s.attach()
        self.assertEqual(messages(s.take_frames()), [[2, "$ack", [0]], [0, 0, "add", [1, 2]]])
        s.receive(pack([1, 0, None, 3]))
        self.assertEqual(await fut, 3)

    async def test_one_timer_for_every_deadline(self) -> None:
        s = self.session(timeout=0.05)
        s.attach()
        armed = []
        real = s.loop.call_at

        def call_at(*a: Any) -> Any:
            armed.append(a)
            return real(*a)

        s.loop.call_at = call_at  # type: ignore[method-assign,assignment]
        futs = [s.call("sleep", [i]) for i in range(100)]
        self.assertEqual(len(armed), 1)
        done = await asyncio.gather(*futs, return_exceptions=True)
        self.assertTrue(all(isinstance(e, RpcError) and e.code == "TIMEOUT" for e in done))
        cancels = [m for m in messages(s.take_frames()) if m[1] == "$cancel"]
        self.assertEqual(len(cancels), 100)

    async def test_cancelling_the_future_sends_cancel(self) -> None:
        s = self.session()
        s.attach()
        fut = s.call("sleep", [5000])
        s.take_frames()
        fut.cancel()
        await asyncio.sleep(0)
        self.assertEqual(messages(s.take_frames()), [[2, "$cancel", [0]]])
        s.receive(pack([1, 0, None, "late"]))  # dropped quietly, still counted
        self.assertEqual(s.received, 1)

    async def test_resync_resends_what_the_ack_missed_and_cancels_given_up_calls(self) -> None:
        s = self.session(timeout=0.05)
        s.attach()
        a = s.call("a", [])
        b = s.call("b", [])
        s.take_frames()
        s.detach()
        with self.assertRaises(RpcError):
            await b  # its deadline passes offline: TIMEOUT at once, $cancel owed
        a.cancel()
        s.attach()  # a resumed socket: $ack first, nothing reliable before the server's $ack
        self.assertEqual(messages(s.take_frames()), [[2, "$ack", [0]]])
        s.receive(pack([2, "$ack", [1]]))  # the server had "a" only
        self.assertEqual(messages(s.take_frames()), [[0, 1, "b", []], [2, "$cancel", [1]], [2, "$cancel", [0]]])
        s.receive(pack([2, "$ack", [3]]))
        self.assertEqual(self.violations, ["impossible $ack 3 (acknowledged 1, sent 2)"])

    async def test_requests_count_when_they_start_and_acks_every_128(self) -> None:
        s = self.session(handlers={"echo": lambda x: x})
        s.attach()
        s.take_frames()
        s.receive(b"".join(pack([0, i, "echo", [i]]) for i in range(200)))
        out = messages(s.take_frames())
        self.assertEqual(out[-1], [2, "$ack", [200]])
        self.assertEqual(sum(1 for m in out if m[0] == 1), 200)

    async def test_message_types_of_later_versions_are_ignored(self) -> None:
        s = self.session(handlers={"note": lambda *a: None})
        s.attach()
        s.take_frames()
        s.receive(pack([7, "chunk", b"x"]) + pack([9]) + pack([0, 1, "note", []]))
        self.assertEqual((self.violations, s.received), ([], 1))
        s.receive(pack(["x", 1]))  # a type that is not an integer: 4002
        s.violated = None
        s.receive(pack([True, 0, None, 1]))  # nor is a bool
        self.assertEqual(self.violations, ["message type must be an integer"] * 2)

    async def test_handler_errors_arity_and_duplicates(self) -> None:
        started = asyncio.Event()

        async def slow() -> None:
            started.set()
            await asyncio.sleep(10)

        s = self.session(handlers={"add": lambda a, b: a + b, "boom": lambda: 1 / 0, "slow": slow})
        s.attach()
        s.take_frames()
        s.receive(pack([0, 1, "add", [1]]) + pack([0, 2, "boom", []]) + pack([0, 3, "$x", []]) + pack([0, 4, "slow", []]))
        codes = {m[1]: m[2]["code"] for m in messages(s.take_frames()) if m[0] == 1}
        self.assertEqual(codes, {1: "INVALID_PARAMS", 2: "INTERNAL", 3: "METHOD_NOT_FOUND"})
        await started.wait()
        s.receive(pack([0, 4, "slow", []]))
        self.assertEqual(self.violations, ["request id 4 is already pending"])

    async def test_async_notification_handlers_are_bounded(self) -> None:
        # A server flooding notifications to an async handler: without the bound each one
        # was a task of its own (5,000 here), held until its handler finished.
        async def note(*args: Any) -> None:
            await asyncio.sleep(10)

        s = self.session(handlers={"note": note}, limits=Limits(max_incoming_pending=64))
        s.attach()
        for _ in range(20):
            s.receive(pack([2, "note", [1]]) * 250)
        self.assertEqual(len(s._notes), 64)
        s.close(RpcError("DISCONNECTED"))
        for t in list(s._notes):
            t.cancel()


SESSION = pack([2, "$session", [{"sid": "s1", "resumed": False, "resumeWindowMs": 1000, "heartbeatMs": 10_000,
                                  "maxMessageBytes": 1 << 20, "limits": {}}]]) + pack([2, "$ack", [0]])


class SocketTest(unittest.IsolatedAsyncioTestCase):
    """The client against a fake server on a real socket (port 0)."""

    async def test_close_while_dialling_returns_at_once(self) -> None:
        # A server that accepts TCP and never answers the upgrade.
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = VolleyClient(f"ws://127.0.0.1:{port}/", connect_timeout=10)
        await asyncio.sleep(0.1)
        t0 = time.monotonic()
        await client.close()
        self.assertLess(time.monotonic() - t0, 1.0)
        self.assertEqual(client.state, "closed")
        server.close()

    async def test_a_message_over_max_message_bytes_is_final(self) -> None:
        async def serve(ws: Any, *_: Any) -> None:
            await ws.send(SESSION)
            await ws.recv()  # the client's $ack, then its call
            await ws.send(b"\x00" * 70_000)
            await asyncio.sleep(1)

        async with websockets.serve(serve, "127.0.0.1", 0, max_size=None) as server:  # type: ignore[attr-defined]
            port = server.sockets[0].getsockname()[1]
            client = VolleyClient(f"ws://127.0.0.1:{port}/", limits=Limits(max_message_bytes=65_536))
            await client.wait_open()
            with self.assertRaises(RpcError) as e:
                await client.call("echo", 1)
            self.assertEqual(e.exception.code, "DISCONNECTED")
            await client.close()
            self.assertEqual((client.state, client.close_info and client.close_info.code), ("closed", 1009))

    async def test_close_sends_what_is_queued_first(self) -> None:
        got: list[int] = []

        async def serve(ws: Any, *_: Any) -> None:
            await ws.send(SESSION)
            async for frame in ws:
                got.append(frame.count(b"$ack") and 0 or frame.count(b"bulk"))

        async with websockets.serve(serve, "127.0.0.1", 0, max_size=None) as server:  # type: ignore[attr-defined]
            port = server.sockets[0].getsockname()[1]
            client = VolleyClient(f"ws://127.0.0.1:{port}/")
            await client.wait_open()
            for _ in range(40):
                client.notify("bulk", b"x" * 200_000)  # 8 MB: the writer waits on the socket's buffer
            await asyncio.sleep(0.001)  # let the writer take them and start
            await client.close()
            self.assertEqual(sum(got), 40)

    async def test_a_silent_server_is_dropped_4008_and_the_session_resumed(self) -> None:
        sockets: list[Any] = []

        async def serve(ws: Any, *_: Any) -> None:
            sockets.append(ws)
            if len(sockets) == 1:
                await ws.send(SESSION)  # then silence, no $pong
            else:
                await ws.send(SESSION.replace(b"\xc2", b"\xc3", 1))  # resumed: true
            await ws.wait_closed()

        async with websockets.serve(serve, "127.0.0.1", 0) as server:  # type: ignore[attr-defined]
            port = server.sockets[0].getsockname()[1]
            opens: list[bool] = []
            client = VolleyClient(f"ws://127.0.0.1:{port}/", heartbeat=0.05, on_open=opens.append,
                                  reconnect=volley_reconnect())
            deadline = time.monotonic() + 3
            while len(opens) < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            self.assertEqual(opens, [False, True])
            self.assertEqual(sockets[0].close_code, 4008)
            await client.close()


def volley_reconnect() -> Any:
    from volley import Reconnect

    return Reconnect(initial=0.01, max=0.05)


if __name__ == "__main__":
    unittest.main()
