"""The feature `items` (SPEC §11, §12, version 1.1) without a server: the reader taking
`$items` (refused shapes, one answer once every value was taken), the producer batching what
its iterator yields in one loop iteration, and `$features` after `$ack`/`$limits`."""

from __future__ import annotations

import asyncio
import sys
import time
import unittest
from pathlib import Path
from typing import Any, AsyncIterator

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import websockets  # noqa: E402

from test_session import messages, volley_reconnect  # noqa: E402
from test_streams import settle  # noqa: E402
from volley import Limits, RpcError, VolleyClient  # noqa: E402
from volley.codec import decode, pack, split_frame  # noqa: E402
from volley.session import Session  # noqa: E402


def items(item_id: int, call_id: Any, values: Any) -> bytes:
    return pack([0, item_id, "$items", [call_id, values]])


def codes(out: list[Any]) -> list[tuple[int, Any]]:
    """(id, error code or None) of each response."""
    return [(m[1], m[2] and m[2]["code"]) for m in out if m[0] == 1]


class ItemsTest(unittest.IsolatedAsyncioTestCase):
    def session(self, peer_items: bool = True, **kw: Any) -> Session:
        self.violations: list[str] = []
        self.errors: list[BaseException] = []
        s = Session(handlers=kw.pop("handlers", {}), limits=kw.pop("limits", Limits()), timeout=10.0,
                    on_write=lambda: None, on_violation=self.violations.append, on_extension=lambda m, p: None,
                    on_handler_error=lambda e, m: self.errors.append(e))
        s.peer_items = peer_items
        s.attach()
        s.take_frames()
        return s

    # ---- reading ----------------------------------------------------------------------

    async def test_items_of_the_wrong_shape_are_refused(self) -> None:
        s = self.session()
        stream = s.stream("countTo", [3])
        plain = s.call("countTo", [3])  # call 1: nobody reads its items
        s.take_frames()
        bad = [[0, []], [0, list(range(17))], [0, 5], [0], [], ["0", [1]], [0, [1], 2]]
        s.receive(b"".join(pack([0, 100 + i, "$items", p]) for i, p in enumerate(bad))
                  + items(120, 99, [1, 2]) + items(121, 1, [1, 2]))
        self.assertEqual(codes(messages(s.take_frames())),
                         [(100 + i, "INVALID_PARAMS") for i in range(len(bad))] + [(120, "CANCELLED"), (121, "CANCELLED")])
        self.assertEqual((s.running, self.violations), (0, []))
        s.receive(items(122, 0, list(range(16))) + pack([1, 0, None, None]))  # 16 is a window: taken
        self.assertEqual([x async for x in stream], list(range(16)))
        self.assertEqual(codes(messages(s.take_frames())), [(122, None)])
        plain.cancel()

    async def test_an_items_is_answered_once_all_its_values_were_taken(self) -> None:
        s = self.session(limits=Limits(max_incoming_pending=2))
        stream = s.stream("countTo", [10])
        s.take_frames()
        s.receive(items(100, 0, ["a", "b", "c"]) + pack([0, 101, "$item", [0, "d"]]) + items(102, 0, ["e", "f"]))
        self.assertEqual(codes(messages(s.take_frames())), [(102, "OVERLOADED")])  # a request counts once while held
        self.assertEqual(s.running, 2)
        self.assertEqual([await stream.__anext__(), await stream.__anext__()], ["a", "b"])
        self.assertEqual(messages(s.take_frames()), [])  # "c" is not taken yet: no credit
        self.assertEqual(await stream.__anext__(), "c")
        self.assertEqual(messages(s.take_frames()), [[1, 100, None, None]])  # once, for all three
        self.assertEqual(await stream.__anext__(), "d")
        s.receive(items(103, 0, ["g", "h", "i"]))
        self.assertEqual(await stream.__anext__(), "g")
        await stream.aclose()  # stops with "h", "i" untaken: the request is refused, once
        out = messages(s.take_frames())
        self.assertEqual(codes(out), [(101, None), (103, "CANCELLED")])
        self.assertEqual((s.running, s.pending, self.violations), (0, 0, []))

    # ---- producing --------------------------------------------------------------------

    async def run_producer(self, s: Session, method: str, params: list[Any]) -> tuple[list[Any], list[list[Any]], Any]:
        """Call `method` (id 7) and answer each item request as it comes: the values, the
        requests' params, and the call's end."""
        s.receive(pack([0, 7, method, params]))
        got: list[Any] = []
        requests: list[list[Any]] = []
        for _ in range(200):
            await settle()
            out = messages(s.take_frames())
            for m in out:
                if m[0] == 1 and m[1] == 7:
                    return got, requests, m
                self.assertEqual((m[0], m[3][0]), (0, 7))
                requests.append(m)
                got.extend(m[3][1] if m[2] == "$items" else [m[3][1]])
            if out:
                s.receive(b"".join(pack([1, m[1], None, None]) for m in out))
        self.fail("the stream did not end")

    async def test_what_the_iterator_yields_in_one_loop_iteration_goes_as_one_items(self) -> None:
        async def numbers(n: int) -> AsyncIterator[int]:
            for i in range(n):
                yield i

        async def paced(n: int) -> AsyncIterator[int]:
            for i in range(n):
                if i % 3 == 0:
                    await asyncio.sleep(0)  # gives control back to the loop: the batch goes
                yield i

        s = self.session(handlers={"numbers": numbers, "paced": paced})
        got, requests, end = await self.run_producer(s, "numbers", [40])
        self.assertEqual((got, end), (list(range(40)), [1, 7, None, None]))
        self.assertEqual([(m[2], len(m[3][1])) for m in requests], [("$items", 16), ("$items", 16), ("$items", 8)])
        got, requests, _ = await self.run_producer(s, "paced", [7])
        self.assertEqual(got, list(range(7)))
        self.assertEqual([m[3][1] for m in requests], [[0, 1, 2], [3, 4, 5], 6])  # one value alone: $item
        # A server that does not take `$items`: one `$item` each.
        s = self.session(peer_items=False, handlers={"numbers": numbers})
        got, requests, _ = await self.run_producer(s, "numbers", [20])
        self.assertEqual((got, {m[2] for m in requests}, len(requests)), (list(range(20)), {"$item"}, 20))

    async def test_the_window_counts_items_not_requests(self) -> None:
        async def forever() -> AsyncIterator[int]:
            i = 0
            while True:
                yield i
                i += 1

        s = self.session(handlers={"forever": forever})
        s.receive(pack([0, 7, "forever", []]))
        await settle()
        out = messages(s.take_frames())
        self.assertEqual([len(m[3][1]) for m in out], [16])
        await settle()
        self.assertEqual(messages(s.take_frames()), [], "16 values unanswered: it waits")
        s.receive(pack([1, out[0][1], None, None]))
        await settle()
        self.assertEqual([m[3][1] for m in messages(s.take_frames())], [list(range(16, 32))])
        s.receive(pack([2, "$cancel", [7]]))
        await settle()
        self.assertEqual((s.running, self.errors), (0, []))

    async def test_items_too_large_together_go_one_by_one_from_then_on(self) -> None:
        async def blobs(n: int, size: int) -> AsyncIterator[bytes]:
            for i in range(n):
                yield bytes([i]) * size

        # Each fits in 4 KiB; 16 of them together would not.
        s = self.session(handlers={"blobs": blobs})
        s.peer_limits = Limits(max_message_bytes=4096)
        got, requests, end = await self.run_producer(s, "blobs", [20, 1000])
        self.assertEqual((len(got), end), (20, [1, 7, None, None]))
        self.assertEqual({m[2] for m in requests}, {"$item"})
        self.assertEqual(got, [bytes([i]) * 1000 for i in range(20)])
        # Past the server's values per message (maxElements), the same.
        s = self.session(handlers={"blobs": lambda n: blobs_list(n)})
        s.peer_limits = Limits(max_elements=40)
        got, requests, _ = await self.run_producer(s, "blobs", [4])
        self.assertEqual((got, [m[2] for m in requests]), ([[i] * 10 for i in range(4)], ["$item"] * 4))
        self.assertEqual(self.errors, [])

    async def test_items_yielded_before_the_iterator_failed_go_out_before_its_error(self) -> None:
        async def fail_after(n: int, code: str) -> AsyncIterator[int]:
            for i in range(n):
                yield i
            raise RpcError(code, "the stream failed")

        s = self.session(handlers={"failAfter": fail_after})
        s.receive(pack([0, 7, "failAfter", [3, "GAME_OVER"]]))
        await settle()
        self.assertEqual(messages(s.take_frames()), [[0, 0, "$items", [7, [0, 1, 2]]],
                                                     [1, 7, {"code": "GAME_OVER", "message": "the stream failed"}, None]])


async def blobs_list(n: int) -> AsyncIterator[list[int]]:
    for i in range(n):
        yield [i] * 10


def session_with_items(resumed: bool) -> bytes:
    info = {"sid": "s1", "resumed": resumed, "resumeWindowMs": 1000, "heartbeatMs": 10_000,
            "maxMessageBytes": 1 << 20, "limits": {}, "features": ["x-other", "items"]}
    return pack([2, "$session", [info]]) + pack([2, "$ack", [0]])


class FeaturesTest(unittest.IsolatedAsyncioTestCase):
    async def test_features_after_ack_and_limits_on_a_fresh_session_only(self) -> None:
        first: list[Any] = []
        later: list[Any] = []
        sockets = [first, later]

        async def serve(ws: Any, *_: Any) -> None:
            got = sockets.pop(0)
            await ws.send(session_with_items(resumed=got is later))
            try:
                async for frame in ws:
                    start = 0
                    for s in split_frame(frame, Limits()):
                        got.append(decode(frame[start : s.end]))
                        start = s.end
            except websockets.exceptions.ConnectionClosed:
                pass  # the client's drop()

        async with websockets.serve(serve, "127.0.0.1", 0) as server:  # type: ignore[attr-defined]
            port = server.sockets[0].getsockname()[1]
            opens: list[bool] = []
            client = VolleyClient(f"ws://127.0.0.1:{port}/", limits=Limits(max_incoming_pending=2048),
                                  on_open=opens.append, reconnect=volley_reconnect())
            await client.wait_open()
            self.assertTrue(client._session.peer_items)
            client.notify("hello")
            deadline = time.monotonic() + 3
            while len(first) < 4 and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            self.assertEqual(first, [[2, "$ack", [0]], [2, "$limits", [{"maxIncomingPending": 2048}]],
                                     [2, "$features", [["items"]]], [2, "hello", []]])
            client.drop()
            while len(opens) < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            client.notify("again")
            while len(later) < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            self.assertEqual((opens, later), ([False, True], [[2, "$ack", [0]], [2, "again", []]]))
            await client.close()


if __name__ == "__main__":
    unittest.main()
