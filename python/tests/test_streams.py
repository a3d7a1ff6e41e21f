"""Streams (SPEC §12) on the engine without a server: reading, producing, stopping."""

from __future__ import annotations

import asyncio
import sys
import unittest
from pathlib import Path
from typing import Any, AsyncIterator

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from test_session import messages  # noqa: E402
from volley import Limits, RpcError  # noqa: E402
from volley.codec import pack  # noqa: E402
from volley.session import Session  # noqa: E402


async def settle() -> None:
    """Let tasks started by a frame run (a producer's loop, a generator's finally)."""
    for _ in range(20):
        await asyncio.sleep(0)


def item(item_id: int, call_id: int, value: Any) -> bytes:
    return pack([0, item_id, "$item", [call_id, value]])


class StreamTest(unittest.IsolatedAsyncioTestCase):
    def session(self, **kw: Any) -> Session:
        self.violations: list[str] = []
        self.errors: list[BaseException] = []
        s = Session(handlers=kw.pop("handlers", {}), limits=kw.pop("limits", Limits()), timeout=10.0,
                    on_write=lambda: None, on_violation=self.violations.append, on_extension=lambda m, p: None,
                    on_handler_error=lambda e, m: self.errors.append(e))
        s.attach()
        s.take_frames()
        return s

    # ---- reading ----------------------------------------------------------------------

    async def test_items_in_order_each_answered_when_its_reader_takes_it(self) -> None:
        s = self.session()
        stream = s.stream("countTo", [3])
        self.assertEqual(messages(s.take_frames()), [[0, 0, "countTo", [3]]])
        s.receive(item(100, 0, "a") + item(101, 0, "b"))
        self.assertEqual(messages(s.take_frames()), [])  # no credit before the reader takes one
        self.assertEqual(s.running, 2)  # held like running calls
        self.assertEqual(await stream.__anext__(), "a")
        self.assertEqual(messages(s.take_frames()), [[1, 100, None, None]])
        s.receive(item(102, 0, "c") + pack([1, 0, None, None]))  # the last item, then the end
        self.assertEqual([x async for x in stream], ["b", "c"])
        self.assertEqual(messages(s.take_frames()), [[1, 101, None, None], [1, 102, None, None]])
        self.assertEqual((s.running, s.pending, self.violations), (0, 0, []))

    async def test_a_stream_fails_with_its_code_after_its_items(self) -> None:
        s = self.session()
        stream = s.stream("failAfter", [2, "GAME_OVER"])
        s.receive(item(100, 0, 0) + item(101, 0, 1) + pack([1, 0, {"code": "GAME_OVER", "message": "over"}, None]))
        got: list[Any] = []
        with self.assertRaises(RpcError) as e:
            async for x in stream:
                got.append(x)
        self.assertEqual((got, e.exception.code), ([0, 1], "GAME_OVER"))

    async def test_aclose_gives_the_call_up_and_refuses_what_waits_and_what_comes(self) -> None:
        s = self.session()
        stream = s.stream("countTo", [1000])
        s.take_frames()
        s.receive(item(100, 0, 0) + item(101, 0, 1) + item(102, 0, 2))
        self.assertEqual(await stream.__anext__(), 0)
        await stream.aclose()
        out = messages(s.take_frames())
        self.assertEqual(out[0], [1, 100, None, None])
        self.assertEqual(out[1], [2, "$cancel", [0]])
        self.assertEqual([(m[1], m[2]["code"]) for m in out[2:]], [(101, "CANCELLED"), (102, "CANCELLED")])
        s.receive(item(103, 0, 3) + pack([1, 0, {"code": "CANCELLED", "message": ""}, None]))  # in flight, then the end
        self.assertEqual([(m[1], m[2]["code"]) for m in messages(s.take_frames())], [(103, "CANCELLED")])
        with self.assertRaises(StopAsyncIteration):
            await stream.__anext__()
        self.assertEqual((s.running, s.pending, self.violations), (0, 0, []))

    async def test_breaking_out_of_async_for_gives_the_call_up(self) -> None:
        s = self.session()

        async def first() -> Any:
            async for x in s.stream("countTo", [1000]):
                return x  # the stream is dropped here, not closed

        task = asyncio.ensure_future(first())
        await settle()
        s.take_frames()
        s.receive(item(100, 0, "x") + item(101, 0, "y"))
        self.assertEqual(await task, "x")
        out = messages(s.take_frames())
        self.assertIn([2, "$cancel", [0]], out)
        self.assertEqual([m[2]["code"] for m in out if m[1] == 101], ["CANCELLED"])

    async def test_an_item_nobody_reads_is_answered_cancelled(self) -> None:
        s = self.session()
        plain = s.call("countTo", [3])
        s.take_frames()
        s.receive(item(100, 0, 0) + item(101, 99, 0) + pack([0, 102, "$item", []]))
        out = messages(s.take_frames())
        self.assertEqual([(m[1], m[2]["code"]) for m in out], [(100, "CANCELLED"), (101, "CANCELLED"), (102, "CANCELLED")])
        self.assertEqual((s.running, self.violations, plain.done()), (0, [], False))
        plain.cancel()

    async def test_items_not_taken_count_toward_max_incoming_pending(self) -> None:
        # A server pushing items faster than they are read (past the window of 16): each
        # one held is a running call; past the bound they are answered OVERLOADED, not kept.
        s = self.session(limits=Limits(max_incoming_pending=4))
        stream = s.stream("countTo", [10])
        s.take_frames()
        s.receive(b"".join(item(100 + i, 0, i) for i in range(10)))
        out = messages(s.take_frames())
        self.assertEqual([(m[1], m[2]["code"]) for m in out], [(100 + i, "OVERLOADED") for i in range(4, 10)])
        self.assertEqual(s.running, 4)
        self.assertEqual(await stream.__anext__(), 0)
        s.receive(item(110, 0, 10))  # one taken: room for one more
        self.assertEqual(s.running, 4)
        await stream.aclose()
        self.assertEqual(s.running, 0)

    async def test_a_duplicate_item_id_is_a_violation(self) -> None:
        s = self.session()
        stream = s.stream("countTo", [10])
        s.receive(item(100, 0, 0) + item(100, 0, 1))
        self.assertEqual(self.violations, ["request id 100 is already pending"])
        await stream.aclose()

    # ---- producing --------------------------------------------------------------------

    async def test_a_generator_streams_with_a_window_of_16_then_ends_the_call(self) -> None:
        async def numbers(n: int) -> AsyncIterator[int]:
            for i in range(1, n + 1):
                yield i

        async def later(n: int) -> AsyncIterator[int]:  # an async handler returning a stream
            await asyncio.sleep(0)
            return numbers(n)

        for method in ("numbers", "later"):
            s = self.session(handlers={"numbers": numbers, "later": later})
            s.receive(pack([0, 7, method, [40]]))
            got: list[int] = []
            unanswered: list[int] = []
            most = 0
            end = None
            for _ in range(200):
                await settle()
                for m in messages(s.take_frames()):
                    if m[0] == 0 and m[2] == "$item":
                        self.assertEqual(m[3][0], 7)
                        got.append(m[3][1])
                        unanswered.append(m[1])
                    elif m[0] == 1 and m[1] == 7:
                        self.assertEqual(unanswered, [])  # the end comes after every item is answered
                        end = m
                most = max(most, len(unanswered))
                if end is not None:
                    break
                if unanswered:
                    s.receive(pack([1, unanswered.pop(0), None, None]))  # one credit at a time
            self.assertEqual((got, most, end), (list(range(1, 41)), 16, [1, 7, None, None]), method)
            self.assertEqual((s.running, s.pending), (0, 0))

    async def test_the_readers_cancel_stops_the_generator(self) -> None:
        stopped: list[int] = []

        async def forever() -> AsyncIterator[int]:
            i = 0
            try:
                while True:
                    yield i
                    i += 1
            finally:
                stopped.append(i)

        s = self.session(handlers={"forever": forever})
        s.receive(pack([0, 7, "forever", []]))
        await settle()
        self.assertEqual(len(messages(s.take_frames())), 16)  # the window, then it waits
        s.receive(pack([2, "$cancel", [7]]))
        await settle()
        self.assertEqual(stopped, [16])  # its finally ran
        s.receive(b"".join(pack([1, i, {"code": "CANCELLED", "message": ""}, None]) for i in range(16)))
        await settle()
        self.assertEqual(messages(s.take_frames()), [])  # no more items, no response
        self.assertEqual((s.running, s.pending, self.errors), (0, 0, []))

    async def test_an_error_ends_the_stream_after_its_items(self) -> None:
        async def fail_after(n: int, code: str) -> AsyncIterator[int]:
            for i in range(n):
                yield i
            raise RpcError(code, "the stream failed")

        s = self.session(handlers={"failAfter": fail_after})
        s.receive(pack([0, 7, "failAfter", [2, "GAME_OVER"]]))
        await settle()
        # The error goes out behind the items (the reader takes them first), as the TypeScript engine does.
        self.assertEqual(messages(s.take_frames()), [[0, 0, "$item", [7, 0]], [0, 1, "$item", [7, 1]],
                                                     [1, 7, {"code": "GAME_OVER", "message": "the stream failed"}, None]])
        s.receive(pack([1, 0, None, None]) + pack([1, 1, None, None]))  # their credits come later
        self.assertEqual((s.running, s.pending, self.violations), (0, 0, []))

    async def test_an_item_nobody_reads_stops_the_producer(self) -> None:
        # The caller made a plain call: it answers the first item CANCELLED, the call ends so.
        stopped: list[bool] = []

        async def numbers() -> AsyncIterator[int]:
            try:
                for i in range(1000):
                    yield i
            finally:
                stopped.append(True)

        s = self.session(handlers={"numbers": numbers})
        s.receive(pack([0, 7, "numbers", []]))
        await settle()
        s.take_frames()
        s.receive(pack([1, 0, {"code": "CANCELLED", "message": "nobody reads this stream"}, None]))
        await settle()
        self.assertEqual(stopped, [True])
        ends = [m for m in messages(s.take_frames()) if m[0] == 1]
        self.assertEqual(ends, [[1, 7, {"code": "CANCELLED", "message": "nobody reads this stream"}, None]])


if __name__ == "__main__":
    unittest.main()
