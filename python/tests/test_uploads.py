"""Uploads (SPEC §12, "Uploads") on the engine without a server: a call passing an async
iterable (the caller: `$call`, then `$upload` answered as a stream), a handler reading one
(the callee), and what a hostile peer's `$upload`/`$call` costs."""

from __future__ import annotations

import asyncio
import sys
import unittest
from pathlib import Path
from typing import Any, AsyncIterator

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from test_session import messages  # noqa: E402
from test_streams import item, settle  # noqa: E402
from volley import Limits, RpcError  # noqa: E402
from volley.codec import pack  # noqa: E402
from volley.session import Session  # noqa: E402


class Counting:
    def __init__(self, n: int) -> None:
        self.n, self.produced, self.closed = n, 0, False

    async def gen(self) -> AsyncIterator[int]:
        try:
            for i in range(self.n):
                self.produced += 1
                yield i
        finally:
            self.closed = True


class UploadTest(unittest.IsolatedAsyncioTestCase):
    def session(self, **kw: Any) -> Session:
        self.violations: list[str] = []
        s = Session(handlers=kw.pop("handlers", {}), limits=Limits(), timeout=10.0, on_write=lambda: None,
                    on_violation=self.violations.append, on_extension=lambda m, p: None, on_handler_error=lambda e, m: None)
        s.attach()
        s.take_frames()
        return s

    # ---- the caller ----------------------------------------------------------------------

    async def test_a_call_with_an_upload_goes_as_call_and_its_upload_as_a_stream_under_credit(self) -> None:
        s = self.session()
        up = Counting(40)
        fut = s.call("uploadReplay", ["m1", up.gen()])
        self.assertEqual(messages(s.take_frames()), [[0, 0, "$call", ["uploadReplay", ["m1", None], [1]]]])
        await settle()
        self.assertEqual(up.produced, 0, "nothing read before the callee asks")
        s.receive(pack([0, 7, "$upload", [0, 1]]))
        await settle()
        out = messages(s.take_frames())
        self.assertEqual([m[3] for m in out], [[7, i] for i in range(16)], "16 items, then it waits for credit")
        self.assertEqual({m[2] for m in out}, {"$item"})
        s.receive(b"".join(pack([1, m[1], None, None]) for m in out))  # taken: credit for 16 more
        await settle()
        self.assertEqual([m[3][1] for m in messages(s.take_frames())], list(range(16, 32)))
        self.assertIn(up.produced, range(32, 35))
        s.receive(pack([2, "$cancel", [7]]))  # the handler stopped reading
        await settle()
        self.assertTrue(up.closed, "the generator's finally ran")
        s.receive(pack([1, 0, None, "done"]))
        self.assertEqual(await fut, "done")
        await settle()
        self.assertEqual((s._uploads, s.running, self.violations), ({}, 0, []))

    async def test_the_calls_end_stops_its_upload(self) -> None:
        s = self.session()
        up = Counting(1000)
        fut = s.call("m", [up.gen()], timeout=0.05)
        s.receive(pack([0, 3, "$upload", [0, 0]]))
        await settle()
        with self.assertRaises(RpcError) as e:
            await fut
        self.assertEqual(e.exception.code, "TIMEOUT")
        await settle()
        self.assertTrue(up.closed)
        self.assertEqual((s._uploads, s.running), ({}, 0))

    async def test_upload_for_nothing_offered_is_invalid_params_and_keeps_nothing(self) -> None:
        s = self.session()
        plain = s.call("m", [1])
        fut = s.call("m", [Counting(3).gen()])
        s.take_frames()
        bad = [[0, 0], [1, 1], [9, 0], ["1", 0], [1, "0"], [1], []]
        s.receive(b"".join(pack([0, 10 + i, "$upload", p]) for i, p in enumerate(bad)))
        s.receive(pack([0, 30, "$upload", [1, 0]]) + pack([0, 31, "$upload", [1, 0]]))  # read, then again
        await settle()
        out = [m for m in messages(s.take_frames()) if m[0] == 1]
        self.assertEqual([(m[1], m[2]["code"]) for m in out], [(10 + i, "INVALID_PARAMS") for i in range(len(bad))] + [(31, "INVALID_PARAMS")])
        self.assertEqual(self.violations, [])
        plain.cancel()
        fut.cancel()

    # ---- the callee ----------------------------------------------------------------------

    async def test_a_handler_reads_an_upload_and_gives_it_up_when_it_answers(self) -> None:
        async def first_two(xs: Any) -> list[Any]:
            got = []
            async for x in xs:
                got.append(x)
                if len(got) == 2:
                    break
            return got

        s = self.session(handlers={"firstTwo": first_two})
        s.receive(pack([0, 5, "$call", ["firstTwo", [None], [0]]]))
        await settle()
        self.assertEqual(messages(s.take_frames()), [[0, 0, "$upload", [5, 0]]])
        s.receive(item(100, 0, "a") + item(101, 0, "b") + item(102, 0, "c"))
        await settle()
        out = messages(s.take_frames())
        self.assertIn([1, 5, None, ["a", "b"]], out)
        self.assertIn([2, "$cancel", [0]], out, "the read it left is given up")
        self.assertEqual((s.running, s.pending), (0, 0))

    async def test_malformed_call_is_refused_alone(self) -> None:
        s = self.session(handlers={"m": lambda xs: 1})
        bad = [["m", [None], []], ["m", [5], [0]], ["m", [None, None], [1, 1]], ["m", [None], [1]], [5, [None], [0]],
               ["m", [None] * 40, [0]], ["x" * 200, [None], [0]], ["m", [None]]]
        s.receive(b"".join(pack([0, i, "$call", p]) for i, p in enumerate(bad)))
        s.receive(pack([0, 50, "$call", ["nope", [None], [0]]]) + pack([0, 51, "$call", ["$item", [None], [0]]]))
        out = messages(s.take_frames())
        self.assertEqual([m[2]["code"] for m in out], ["INVALID_PARAMS"] * len(bad) + ["METHOD_NOT_FOUND"] * 2)
        self.assertEqual(self.violations, [])


if __name__ == "__main__":
    unittest.main()
