"""The conformance kit (conformance/cases.json) run by the Python client against a kit server:

    npx tsx conformance/server.ts --port 0          # prints LISTENING <port>
    python3 python/kit_runner.py --url http://127.0.0.1:<port> [case ids…]

One line per case (PASS/FAIL <id> <title>), then "N passed, M failed"; exit 1 if any
failed or a case has no implementation here. Ported from conformance/typescript/cases.ts.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import math
import os
import socket
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "src"))

from volley import Limits, Reconnect, RpcError, VolleyClient, connect  # noqa: E402
from volley.codec import check_shape, decode, pack, split_frame  # noqa: E402

KIT = HERE.parent / "conformance"
VECTORS = json.loads((KIT / "vectors.json").read_text())
CASE_LIST = json.loads((KIT / "cases.json").read_text())["cases"]
FRAMES = {c["id"]: c.get("frames", {}) for c in CASE_LIST}
UTC = dt.timezone.utc


class CaseFailed(Exception):
    pass


def check(cond: Any, msg: str) -> None:
    if not cond:
        raise CaseFailed(msg)


# ---- values ---------------------------------------------------------------------------


def untag(x: dict[str, Any]) -> Any:
    """vectors.json's tagged form as the Python value the client decodes it to."""
    t: str = x["t"]
    v: Any = x.get("v")
    if t == "nil":
        return None
    if t in ("bool", "str", "int"):
        return v  # "int" may hold a JSON float (1e300): kept as the float it is
    if t == "float":
        return float({"NaN": "nan", "Infinity": "inf", "-Infinity": "-inf"}.get(v, v)) if isinstance(v, str) else float(v)
    if t == "bin":
        return bytes.fromhex(v)
    if t == "timestamp":
        return dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(seconds=x["sec"], microseconds=x["nsec"] // 1000)
    if t == "array":
        return [untag(e) for e in v]
    if t == "map":
        return {untag(k): untag(e) for k, e in v}
    raise ValueError(f"unknown tag {t}")


def same(a: Any, b: Any) -> bool:
    """Deep equality of decoded values: ints must stay ints and floats floats (NaN equals NaN)."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, float) or isinstance(b, float):
        return type(a) is float and type(b) is float and (a == b or (math.isnan(a) and math.isnan(b)))
    if isinstance(a, int):
        return type(b) is int and a == b
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        if not isinstance(b, dict) or len(a) != len(b):
            return False
        bs = {str(k): v for k, v in b.items()}
        return all(str(k) in bs and same(v, bs[str(k)]) for k, v in a.items())
    return type(a) is type(b) and a == b


def show(v: Any) -> str:
    return repr(v)[:200]


ECHO_VALUES = [untag(v["value"]) for v in VECTORS["vectors"] if v["kind"] == "both"]


def codec_mismatches() -> list[str]:
    """Case 6.1: each vector as the param of a notification: decode, refuse, re-encode."""
    wrong: list[str] = []
    floor = Limits(max_messages_per_frame=1)
    for v in VECTORS["vectors"]:
        frame = bytes.fromhex("9302a46e6f746591" + v["hex"])
        try:
            (s,) = split_frame(frame, floor)
            m = decode(frame) if s.refused is None else None
            refused = m is None or check_shape(m) is not None
            got = None if refused else m[2][0]
        except Exception:
            refused, got = True, None
        if v["kind"] == "invalid":
            if not refused:
                wrong.append(f"{v['name']}: accepted as {show(got)}")
            continue
        want = untag(v["value"])
        if refused or not same(got, want):
            wrong.append(f"{v['name']}: decoded {'as refused' if refused else show(got)}")
        if v["kind"] == "both":
            # Volley's bytes or the smallest encoding (`canonical`, where msgpackr writes a
            # map16 or a 96-bit timestamp): what msgpack-python writes is the latter.
            try:
                ours = pack(want).hex()
            except Exception as e:
                ours = f"refused ({e})"
            if ours not in (v["hex"], v.get("canonical")):
                wrong.append(f"{v['name']}: encoded {ours}, Volley writes {v['hex']}")
    return wrong


# ---- a run per case -------------------------------------------------------------------

_n = itertools.count(1)


def uid_for(case_id: str) -> str:
    return f"c{case_id}-py{os.getpid()}-{next(_n)}"


def kit_handlers(c: Callable[[], VolleyClient], notes: list[list[Any]], runs: dict[str, int]) -> dict[str, Callable[..., Any]]:
    """The client handlers every runner registers (conformance/README.md)."""

    async def slow(ms: float, tag: str) -> str:
        try:
            await asyncio.sleep(ms / 1000)
            return "done"
        except asyncio.CancelledError:
            c().notify("kit.aborted", tag)
            raise

    def fail(code: str, message: str, data: Any = None) -> None:
        raise RpcError(code, message, data)

    def boom() -> None:
        raise ValueError("client secret")

    async def count(key: str, delayMs: float = 0) -> int:
        runs[key] = k = runs.get(key, 0) + 1
        if delayMs > 0:
            await asyncio.sleep(delayMs / 1000)
        return k

    async def numbers(n: int) -> AsyncIterator[int]:
        """A stream of 1 … n (case 12.4: the server reads it)."""
        for i in range(1, n + 1):
            yield i

    async def collect(xs: AsyncIterator[Any]) -> list[Any]:
        """Reads the server's upload xs (SPEC §12) and answers its items (case 12.10)."""
        return [x async for x in xs]

    return {"echo": lambda x: x, "add": lambda a, b: a + b, "slow": slow, "fail": fail, "boom": boom, "count": count,
            "note": lambda *args: notes.append(list(args)), "numbers": numbers, "collect": collect}


class Run:
    def __init__(self, base: str, case_id: str, path: str) -> None:
        self.base, self.id, self.path = base, case_id, path
        self.clients: list[VolleyClient] = []

    def url(self, path: str | None = None) -> str:
        return self.base.replace("http", "ws", 1) + (path or self.path)

    async def connect(self, uid: str | None = None, path: str | None = None, **opts: Any) -> VolleyClient:
        """A client with the kit's handlers; returns once the session is open. Adds .notes, .runs, .opens."""
        notes: list[list[Any]] = []
        runs: dict[str, int] = {}
        opens: list[bool] = []
        ref: list[VolleyClient] = []
        options: dict[str, Any] = dict(token=uid or uid_for(self.id), handlers=kit_handlers(lambda: ref[0], notes, runs),
                                       on_error=lambda e, m: None, reconnect=Reconnect(initial=0.02, max=0.2), on_open=opens.append)
        options.update(opts)
        c = VolleyClient(self.url(path), **options)
        ref.append(c)
        c.notes, c.runs, c.opens = notes, runs, opens  # type: ignore[attr-defined]
        self.clients.append(c)
        await c.wait_open()
        return c

    async def http(self, method: str, route: str, **params: Any) -> Any:
        url = f"{self.base}{route}?{urllib.parse.urlencode(params)}"

        def fetch() -> Any:
            with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=10) as res:
                return json.loads(res.read())

        return await asyncio.get_running_loop().run_in_executor(None, fetch)

    async def verdict(self, uid: str, case_id: str | None = None, within_ms: float = 0) -> None:
        end = time.monotonic() + within_ms / 1000
        while True:
            v = await self.http("GET", "/kit/verdict", case=case_id or self.id, uid=uid)
            if v["ok"] or time.monotonic() >= end:
                check(v["ok"], f"kit verdict: {v['detail']}")
                return
            await asyncio.sleep(0.05)

    async def counters(self) -> dict[str, Any]:
        return await self.http("GET", "/kit/counters")  # type: ignore[no-any-return]

    async def until_runs(self, keys: list[str], ms: float) -> None:
        end = time.monotonic() + ms / 1000
        while True:
            runs = (await self.counters())["runs"]
            if all(runs.get(k) == 1 for k in keys):
                return
            check(time.monotonic() < end, f"not every call ran once: {[runs.get(k, 0) for k in keys]}")
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.clients), return_exceptions=True)


async def settle(fut: Awaitable[Any]) -> dict[str, Any]:
    try:
        return {"value": await fut}
    except RpcError as e:
        return {"code": e.code, "message": e.message, "data": e.data}
    except asyncio.CancelledError:
        if isinstance(fut, asyncio.Future) and fut.cancelled():
            return {"code": "CANCELLED", "message": "cancelled"}
        raise


def later(fut: asyncio.Future[Any]) -> asyncio.Future[Any]:
    """A call awaited later: if the case fails before that, its failure is no warning."""
    fut.add_done_callback(lambda f: f.cancelled() or f.exception())
    return fut


async def rejects(fut: Awaitable[Any], code: str) -> dict[str, Any]:
    o = await settle(fut)
    check(o.get("code") == code, f"expected {code}, got {o['code'] + ': ' + str(o.get('message')) if 'code' in o else 'result ' + show(o['value'])}")
    return o


async def until(cond: Callable[[], Any], ms: float, what: str) -> None:
    end = time.monotonic() + ms / 1000
    while not cond():
        check(time.monotonic() < end, f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def refused_data(o: dict[str, Any], status: int) -> None:
    d = o.get("data") or {}
    check(d.get("status") == status or d.get("closeCode") == 4000 + status, f"data {show(d)}")


# ---- the cases --------------------------------------------------------------------------

Case = Callable[[Run], Awaitable[None]]
CASES: dict[str, Case] = {}


def case(*ids: str) -> Callable[[Case], Case]:
    def register(fn: Case) -> Case:
        for i in ids:
            CASES[i] = fn
        return fn

    return register


@case("3.1", "3.2", "3.3", "3.4", "3.5", "3.6", "3.7", "3.8", "3.9", "9.7", "10.3")
async def script(r: Run) -> None:
    """Connect, kit.callMe(id): the server calls the client's handlers and judges."""
    c = await r.connect()
    v = await c.call("kit.callMe", r.id, timeout=20)
    check(v["ok"], f"server script: {v['detail']}")


@case("9.4", "9.9", "9.10")
async def script_and_verdict(r: Run) -> None:
    uid = uid_for(r.id)
    c = await r.connect(uid)
    v = await c.call("kit.callMe", r.id, timeout=20)
    check(v["ok"], f"server script: {v['detail']}")
    await r.verdict(uid)


def over_limit(make: Callable[[VolleyClient, str], asyncio.Future[Any]], path: str | None = None) -> Case:
    """The over-limit call fails INVALID_PARAMS without being sent; the connection works after."""

    async def run(r: Run) -> None:
        uid = uid_for(r.id)
        c = await r.connect(uid, path)
        await rejects(make(c, f"over:{r.id}"), "INVALID_PARAMS")
        check(await c.call("echo", 1) == 1, "the connection did not survive")
        await r.verdict(uid)

    return run


def nested(depth: int) -> list[Any]:
    v: list[Any] = []
    for _ in range(depth - 1):
        v = [v]
    return v


CASES["6.7"] = over_limit(lambda c, m: c.call("echo", m, {1, 2}))
CASES["7.1"] = over_limit(lambda c, m: c.call("echo", m, nested(10)), "/tight/")
CASES["7.2"] = over_limit(lambda c, m: c.call("echo", m, *range(39)))
CASES["7.3"] = over_limit(lambda c, m: c.call("m" * 129, m))
CASES["7.4"] = over_limit(lambda c, m: c.call("echo", m, bytes(1024 * 1024 + 1)))
CASES["7.5"] = over_limit(lambda c, m: c.call("echo", m, [0] * 100_001))


async def inject_and_close(r: Run, hex_: str, opcode: int) -> None:
    uid = uid_for(r.id)
    c = await r.connect(uid)
    pending = later(c.call("sleep", 5000, timeout=10))
    await r.http("POST", "/kit/inject", uid=uid, hex=hex_, opcode=opcode)
    await until(lambda: c.state == "closed", 2000, "the client to close")
    check(c.close_info and c.close_info.code == 4002, f"closed with {c.close_info}, want 4002")
    check((await settle(pending)).get("code") == "DISCONNECTED", "pending call did not reject DISCONNECTED")
    await asyncio.sleep(0.3)
    await r.verdict(uid)


CASES["5.3"] = lambda r: inject_and_close(r, "c1", 2)
CASES["5.4"] = lambda r: inject_and_close(r, b"hello".hex(), 1)


@case("1.1", "1.7")
async def connect_then_verdict(r: Run) -> None:
    uid = uid_for(r.id)
    await r.connect(uid)
    await asyncio.sleep(0.1)
    await r.verdict(uid)


@case("1.2")
async def _1_2(r: Run) -> None:
    for token_in in ("header", "protocol"):
        c = await r.connect(token_in=token_in)
        check(await c.call("echo", "hi") == "hi", f"echo failed (token in {token_in})")


@case("1.3")
async def _1_3(r: Run) -> None:
    refused_data(await rejects(r.connect(f"bad-{uid_for(r.id)}"), "REFUSED"), 401)


@case("1.4")
async def _1_4(r: Run) -> None:
    uid = uid_for(r.id)
    first = await r.connect(uid)
    refused_data(await rejects(r.connect(uid), "REFUSED"), 409)
    check(await first.call("echo", 1) == 1, "the first client stopped working")


@case("1.5")
async def _1_5(r: Run) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    o = await settle(connect(f"ws://127.0.0.1:{port}/", token="x", reconnect=False))
    check(o.get("code") == "DISCONNECTED", f"expected DISCONNECTED, got {o.get('code')}")


@case("1.6")
async def _1_6(r: Run) -> None:
    uid = uid_for(r.id)
    one = await r.connect(uid)
    pending = later(one.call("sleep", 5000, timeout=10))
    two = await r.connect(uid)
    await until(lambda: one.state == "closed", 2000, "the replaced client to close")
    check(one.close_info and one.close_info.code == 4000, f"closed with {one.close_info}")
    check((await settle(pending)).get("code") == "DISCONNECTED", "pending call did not reject DISCONNECTED")
    check(await two.call("echo", 2) == 2, "the new client does not work")
    await asyncio.sleep(0.3)
    await r.verdict(uid)


@case("1.8")
async def _1_8(r: Run) -> None:
    uid = uid_for(r.id)
    c = await r.connect(uid)
    check(uid in (await r.counters())["sessions"], "session not listed while open")
    await c.close()
    end = time.monotonic() + 1
    while uid in (await r.counters())["sessions"]:
        check(time.monotonic() < end, "the session outlived a normal close")
        await asyncio.sleep(0.05)


@case("1.9")
async def _1_9(r: Run) -> None:
    a = await r.connect()
    call = later(a.call("sleep", 600))
    await a.call("echo", 1)  # requests run in arrival order: sleep is running now
    await r.http("POST", "/kit/shutdown", path="doomed", graceMs=3000)
    await asyncio.sleep(0.05)
    refused_data(await rejects(r.connect(), "REFUSED"), 503)
    check(await call == "slept", "the running call did not finish")
    await until(lambda: a.close_info and a.close_info.code == 1001, 3000, "close 1001")
    await until(lambda: len(a.opens) > 1, 5000, "the reconnect")  # type: ignore[attr-defined]
    check(a.opens[1] is False and a.state == "open", f"reopened with resumed {a.opens[1]}")  # type: ignore[attr-defined]


@case("1.10")
async def _1_10(r: Run) -> None:
    uid = uid_for(r.id)
    c = await r.connect(uid)
    check(await c.call("echo", "hi") == "hi", "echo failed")
    check(c.state == "open", f"state {c.state}")
    await r.verdict(uid)


@case("2.1")
async def _2_1(r: Run) -> None:
    c = await r.connect()
    for v in ECHO_VALUES:
        got = await c.call("echo", v)
        check(same(got, v), f"{show(v)} came back as {show(got)}")


@case("2.2")
async def _2_2(r: Run) -> None:
    c = await r.connect()
    check(await c.call("add", 2, 40) == 42, "add(2, 40) is not 42")


@case("2.3")
async def _2_3(r: Run) -> None:
    c = await r.connect()
    calls = [asyncio.gather(c.call("sleep", (i * 7) % 50, ""), c.call("echo", i)) for i in range(300)]
    for i, (s, e) in enumerate(await asyncio.gather(*calls)):
        check(s == "slept" and e == i, f"call {i}: {show([s, e])}")


@case("2.4")
async def _2_4(r: Run) -> None:
    c = await r.connect()
    e = await rejects(c.call("fail", "APP_NOPE", "not allowed", {"need": [1, "two"]}), "APP_NOPE")
    check(e["message"] == "not allowed" and same(e["data"], {"need": [1, "two"]}), f"got {e['message']} {show(e['data'])}")


@case("2.5")
async def _2_5(r: Run) -> None:
    c = await r.connect()
    e = await rejects(c.call("internalError"), "INTERNAL")
    check("secret" not in e["message"], "the handler detail leaked")


@case("2.6", "2.7")
async def _2_6(r: Run) -> None:
    c = await r.connect()
    o = await settle(c.call("noSuchMethod" if r.id == "2.6" else "$echo", 1))
    check(o.get("code") == "METHOD_NOT_FOUND", f"got {o.get('code') or show(o.get('value'))}")
    check(await c.call("echo", 1) == 1, "connection lost")


@case("2.8")
async def _2_8(r: Run) -> None:
    c = await r.connect()
    await rejects(c.call("add", 1), "INVALID_PARAMS")


@case("2.9")
async def _2_9(r: Run) -> None:
    c = await r.connect()
    v = await c.call("nothing")
    check(v is None, f"got {show(v)}")


@case("4.1")
async def _4_1(r: Run) -> None:
    c = await r.connect()
    key = f"note-{r.id}-{os.getpid()}-{next(_n)}"
    c.notify("kit.note", key)
    check(await c.call("kit.notes", key) == 1, "the notification did not arrive once")


@case("4.2")
async def _4_2(r: Run) -> None:
    c = await r.connect()
    check(await c.call("notifyMe", "note", 20, "n") == 20, "notifyMe failed")
    await until(lambda: len(c.notes) >= 20, 1000, "20 notes")  # type: ignore[attr-defined]
    for i, args in enumerate(c.notes):  # type: ignore[attr-defined]
        check(same(args, ["n", i]), f"note {i}: {show(args)}")


@case("4.3")
async def _4_3(r: Run) -> None:
    c = await r.connect()
    check(await c.call("notifyMe", "noSuchHandler", 3) == 3, "notifyMe failed")
    check(await c.call("echo", 1) == 1 and c.state == "open", "connection lost")


@case("4.4")
async def _4_4(r: Run) -> None:
    c = await r.connect()
    c.notify("noSuchHandler", 1)
    check(await c.call("echo", 1) == 1, "connection lost")


@case("4.5")
async def _4_5(r: Run) -> None:
    uid = uid_for(r.id)
    c = await r.connect(uid)
    for h in FRAMES[r.id]["inject"]:
        await c.call("kit.inject", h)
    await asyncio.sleep(0.6)
    check(await c.call("echo", 1) == 1 and c.state == "open", f"connection lost ({c.close_info})")
    check(c.notes == [["after"]], f"notes {show(c.notes)}")  # type: ignore[attr-defined]
    await r.verdict(uid)


@case("5.1")
async def _5_1(r: Run) -> None:
    uid = uid_for(r.id)
    c = await r.connect(uid)
    check(await c.call("kit.batch", 5) == 5, "kit.batch failed")
    await until(lambda: len(c.notes) >= 5, 1000, "five notes")  # type: ignore[attr-defined]
    for i, args in enumerate(c.notes):  # type: ignore[attr-defined]
        check(same(args, ["batch", i]), f"note {i}: {show(args)}")
    await r.verdict(uid)


@case("5.2")
async def _5_2(r: Run) -> None:
    uid = uid_for(r.id)
    c = await r.connect(uid)
    got = await asyncio.gather(*(c.call("echo", i) for i in range(600)))
    check(got == list(range(600)), "not every echo answered its own i")
    await r.verdict(uid)


@case("6.1")
async def _6_1(r: Run) -> None:
    wrong = codec_mismatches()
    check(not wrong, f"{len(wrong)} vectors: {'; '.join(wrong[:8])}")


@case("6.2")
async def _6_2(r: Run) -> None:
    c = await r.connect()
    v = await c.call("kit.wire", "6.2", *(untag(w["value"]) for w in VECTORS["wire"]["6.2"]))
    check(v["ok"], v["detail"])


@case("6.3")
async def _6_3(r: Run) -> None:
    c = await r.connect()
    await c.call("kit.inject", "9302a46e6f746594d30000010000000000cf0000010000000000cf001fffffffffffffd3ffffff0000000000")
    await until(lambda: c.notes, 1000, "the note")  # type: ignore[attr-defined]
    check(same(c.notes[0], [2**40, 2**40, 2**53 - 1, -(2**40)]), f"got {show(c.notes[0])}")  # type: ignore[attr-defined]


@case("6.4")
async def _6_4(r: Run) -> None:
    uid = uid_for(r.id)
    c = await r.connect(uid)
    got = await c.call("kit.numbers")
    check(same(got, [2**32, 2**40, 1_700_000_000_000, 2**53 - 1, -(2**31) - 1, -(2**40), -(2**53 - 1)]), f"got {show(got)}")
    await r.verdict(uid)


@case("6.5")
async def _6_5(r: Run) -> None:
    c = await r.connect()
    v = await c.call("kit.wire", "6.5", 1.5, -0.25, 0.1, 1e300)
    check(v["ok"], v["detail"])
    check(same(await c.call("echo", 1.5), 1.5), "echo(1.5)")


@case("6.6")
async def _6_6(r: Run) -> None:
    uid = uid_for(r.id)
    c = await r.connect(uid)
    v = await c.call("kit.wire", "6.6", [1, None, None])  # Python has no undefined: absent is None
    check(v["ok"], v["detail"])
    got = await c.call("kit.undefinedResult")
    check(got.get("a") is None and got["list"] == [1, None] and got["n"] is None, f"got {show(got)}")
    await r.verdict(uid)


@case("6.8")
async def _6_8(r: Run) -> None:
    c = await r.connect()
    for h in ("9302a46e6f746592a3657874d40100", "9302a46e6f746592a3626967cf0020000000000000", "9302a46e6f746591a26f6b"):
        await c.call("kit.inject", h)
    check(await c.call("echo", 1) == 1 and c.state == "open", "connection lost")
    check(c.notes == [["ok"]], f"notes {show(c.notes)}")  # type: ignore[attr-defined]


@case("6.9")
async def _6_9(r: Run) -> None:
    c = await r.connect()
    await c.call("kit.inject", "9302a46e6f746591d7ff1d5353005fee6600")
    await until(lambda: c.notes, 1000, "the note")  # type: ignore[attr-defined]
    d = c.notes[0][0]  # type: ignore[attr-defined]
    check(isinstance(d, dt.datetime) and d == dt.datetime(2021, 1, 1, 0, 0, 0, 123000, tzinfo=UTC), f"got {show(d)}")


@case("6.10")
async def _6_10(r: Run) -> None:
    uid = uid_for(r.id)
    c = await r.connect(uid)
    for kind in ("ext", "unsafe", "deep", "key"):
        o = await settle(c.call("kit.badReply", kind))
        check(o.get("code") == "PROTOCOL_ERROR", f"{kind}: expected PROTOCOL_ERROR, got {o.get('code') or 'result ' + show(o.get('value'))}")
    check(await c.call("echo", 1) == 1 and c.state == "open", "the connection did not survive")
    await r.http("POST", "/kit/drop", uid=uid)
    await until(lambda: len(c.opens) > 1, 3000, "the resume")  # type: ignore[attr-defined]
    check(c.opens[1] is True, "reopened as a new session")  # type: ignore[attr-defined]
    check(await c.call("echo", 2) == 2, "echo after the resume")
    await r.verdict(uid)


@case("6.11")
async def _6_11(r: Run) -> None:
    c = await r.connect()
    opens = len(c.opens)  # type: ignore[attr-defined]
    for kind in ("abyss", "ext-nested", "ts-length"):
        o = await settle(c.call("kit.badReply", kind))
        check(o.get("code") == "PROTOCOL_ERROR", f"{kind}: expected PROTOCOL_ERROR, got {o.get('code') or 'result ' + show(o.get('value'))}")
    check(await c.call("echo", 1) == 1 and c.state == "open" and len(c.opens) == opens, "the session did not stay open")  # type: ignore[attr-defined]


@case("6.12")
async def _6_12(r: Run) -> None:
    c = await r.connect()
    opens = len(c.opens)  # type: ignore[attr-defined]
    o = await settle(c.call("kit.badReply", "ts-range"))
    check(o.get("code") == "PROTOCOL_ERROR", f"expected PROTOCOL_ERROR, got {o.get('code') or 'result ' + show(o.get('value'))}")
    check(await c.call("echo", 1) == 1 and c.state == "open" and len(c.opens) == opens, "the session did not stay open")  # type: ignore[attr-defined]


@case("7.6")
async def _7_6(r: Run) -> None:
    c = await r.connect(limits=Limits(max_messages_per_frame=1024))
    v = await c.call("kit.callMe", r.id, timeout=20)
    check(v["ok"], f"server script: {v['detail']}")


@case("8.1")
async def _8_1(r: Run) -> None:
    uid = uid_for(r.id)
    c = await r.connect(uid)
    t0 = time.monotonic()
    await rejects(c.call("sleep", 5000, f"k-{uid}", timeout=0.15), "TIMEOUT")
    check(time.monotonic() - t0 < 1, "the deadline came late")
    await asyncio.sleep(0.3)
    await r.verdict(uid)


@case("8.2")
async def _8_2(r: Run) -> None:
    uid = uid_for(r.id)
    c = await r.connect(uid)
    fut = c.call("sleep", 5000, f"k-{uid}")
    asyncio.get_running_loop().call_later(0.1, fut.cancel)  # asyncio cancellation sends $cancel
    await rejects(fut, "CANCELLED")
    await asyncio.sleep(0.3)
    await r.verdict(uid)


@case("8.3")
async def _8_3(r: Run) -> None:
    c = await r.connect()
    await rejects(c.call("stubborn", 300, timeout=0.1), "TIMEOUT")
    await asyncio.sleep(0.4)
    check(await c.call("echo", 1) == 1 and c.state == "open", "connection lost")


@case("9.1")
async def _9_1(r: Run) -> None:
    uid = uid_for(r.id)
    c = await r.connect(uid)
    key = f"k-{uid}"
    p = later(c.call("count", key, 400))
    await asyncio.sleep(0.1)
    await r.http("POST", "/kit/drop", uid=uid)
    check(await p == 1, "the call did not answer 1")
    check(c.opens[1:] == [True], f"reopened with resumed {c.opens[1:]}")  # type: ignore[attr-defined]
    check((await r.counters())["runs"].get(key) == 1, "the handler ran more than once")
    await r.verdict(uid)


@case("9.15")
async def _9_15(r: Run) -> None:
    uid = uid_for(r.id)
    c = await r.connect(uid)
    key = f"k-{uid}"
    p = later(c.call("count", key, 400))
    await asyncio.sleep(0.1)
    await r.http("POST", "/kit/drop", uid=uid, code=1001)
    check(await p == 1, "the call did not answer 1")
    check(c.opens[1:] == [True], f"reopened with resumed {c.opens[1:]}")  # type: ignore[attr-defined]
    check((await r.counters())["runs"].get(key) == 1, "the handler ran more than once")
    await r.verdict(uid)


@case("9.2")
async def _9_2(r: Run) -> None:
    uid = uid_for(r.id)
    c = await r.connect(uid)
    key = f"k-{uid}"
    await r.http("POST", "/kit/stall", uid=uid)
    p = later(c.call("count", key))
    await r.until_runs([key], 2000)
    await asyncio.sleep(0.1)
    await r.http("POST", "/kit/drop", uid=uid)
    check(await p == 1, "the call did not answer 1")
    check((await r.counters())["runs"].get(key) == 1, "the handler ran more than once")
    await r.verdict(uid)


@case("9.3")
async def _9_3(r: Run) -> None:
    uid = uid_for(r.id)
    c = await r.connect(uid)
    keys = [f"k-{uid}-{i}" for i in range(50)]
    calls = [later(c.call("count", k, (i * 13) % 300, timeout=15)) for i, k in enumerate(keys)]
    await asyncio.sleep(0.05)
    await r.http("POST", "/kit/stall", uid=uid)
    await asyncio.sleep(0.15)
    await r.http("POST", "/kit/drop", uid=uid)
    got = await asyncio.gather(*calls)
    check(all(v == 1 for v in got), f"answers {show(got)}")
    runs = (await r.counters())["runs"]
    twice = [f"{k}={runs.get(k)}" for k in keys if runs.get(k) != 1]
    check(not twice, f"ran ≠ once: {', '.join(twice)}")
    await r.verdict(uid)


@case("9.5")
async def _9_5(r: Run) -> None:
    uid = uid_for(r.id)
    c = await r.connect(uid)
    check(await c.call("echo", 0) == 0, "echo")
    await r.http("POST", "/kit/stall", uid=uid)
    keys = [f"k-{uid}-{i}" for i in range(5)]
    calls = [later(c.call("count", k, 0, timeout=15)) for k in keys]
    await r.until_runs(keys, 2000)
    await asyncio.sleep(0.1)
    await r.http("POST", "/kit/drop", uid=uid)
    got = await asyncio.gather(*calls)
    check(all(v == 1 for v in got), f"answers {show(got)}")
    await asyncio.sleep(0.1)
    await r.verdict(uid)


@case("9.6")
async def _9_6(r: Run) -> None:
    uid = uid_for(r.id)
    c = await r.connect(uid)
    await asyncio.gather(*(c.call("echo", i) for i in range(300)))
    await asyncio.sleep(0.2)
    await r.verdict(uid)


@case("9.8")
async def _9_8(r: Run) -> None:
    uid = uid_for(r.id)
    c = await r.connect(uid, "/short/")
    p = later(c.call("sleep", 5000, timeout=10))
    await r.http("POST", "/kit/drop", uid=uid, refuseMs=800)
    check((await settle(p)).get("code") == "DISCONNECTED", "the pending call did not reject DISCONNECTED")
    await until(lambda: len(c.opens) > 1 and c.state == "open", 3000, "the reconnect")  # type: ignore[attr-defined]
    check(c.opens[1] is False, "reopened as resumed")  # type: ignore[attr-defined]
    check(await c.call("echo", 1) == 1, "the new session does not work")


@case("9.11")
async def _9_11(r: Run) -> None:
    uid = uid_for(r.id)
    c = await r.connect(uid)
    key = f"k-{uid}"
    await r.http("POST", "/kit/stall", uid=uid, dir="up")
    p = later(c.call("count", key, timeout=15))
    await asyncio.sleep(0.2)
    await r.http("POST", "/kit/drop", uid=uid)
    check(await p == 1, "the call did not answer 1")
    check((await r.counters())["runs"].get(key) == 1, "the handler did not run exactly once")
    await r.verdict(uid)


@case("9.12", "9.13")
async def _9_12(r: Run) -> None:
    """A deadline passes offline: the request lost in flight (9.12) or running on the server (9.13)."""
    uid = uid_for(r.id)
    c = await r.connect(uid)
    lost = r.id == "9.12"
    if lost:
        await r.http("POST", "/kit/stall", uid=uid, dir="up")
    t0 = time.monotonic()
    p = c.call("sleep", 5000, f"k-{uid}", timeout=0.3 if lost else 0.5)
    await asyncio.sleep(0.1 if lost else 0.15)
    await r.http("POST", "/kit/drop", uid=uid, refuseMs=700)
    check((await settle(p)).get("code") == "TIMEOUT", "the call did not reject TIMEOUT")
    check(time.monotonic() - t0 < (1.0 if lost else 1.2), "the deadline came late")
    await until(lambda: c.state == "open" and len(c.opens) > 1, 5000, "the resume")  # type: ignore[attr-defined]
    await asyncio.sleep(0.5)
    await r.verdict(uid)


@case("9.14")
async def _9_14(r: Run) -> None:
    uid = uid_for(r.id)
    c = await r.connect(uid)
    check(await c.call("echo", 0) == 0, "echo")
    await r.http("POST", "/kit/drop", uid=uid, refuseMs=300)
    await until(lambda: c.state != "open", 1000, "the client to see the drop")
    keys = [f"k-{uid}-{i}" for i in range(3)]
    got = await asyncio.gather(*(c.call("count", k, 0, timeout=15) for k in keys))
    check(all(v == 1 for v in got), f"answers {show(got)}")
    await r.until_runs(keys, 1000)
    await asyncio.sleep(0.1)
    await r.verdict(uid)


@case("10.1")
async def _10_1(r: Run) -> None:
    uid = uid_for(r.id)
    await r.connect(uid, "/fast/")
    await r.verdict(uid, within_ms=3000)


@case("10.2")
async def _10_2(r: Run) -> None:
    uid = uid_for(r.id)
    c = await r.connect(uid, "/fast/")
    p = later(c.call("count", f"k-{uid}", 600, timeout=10))
    await r.http("POST", "/kit/stall", uid=uid)
    check(await p == 1, "the call did not answer 1")
    check(c.opens[1:2] == [True], f"reopened with resumed {c.opens[1:]}")  # type: ignore[attr-defined]
    await r.verdict(uid)


@case("11.1")
async def _11_1(r: Run) -> None:
    uid = uid_for(r.id)
    c = await r.connect(uid, "/slow/")
    await r.http("POST", "/kit/stall", uid=uid, ms=1500)
    got = await asyncio.gather(*(settle(c.call("blob", 131072, timeout=20)) for _ in range(64)))
    bad = [o for o in got if not (isinstance(o.get("value"), bytes) and len(o["value"]) == 131072)]
    check(not bad, f"{len(bad)} of 64 failed, e.g. {bad[0] if bad else ''}")
    check(c.opens[1:2] == [True], f"reopened with resumed {c.opens[1:]}")  # type: ignore[attr-defined]
    await r.verdict(uid)


@case("11.2")
async def _11_2(r: Run) -> None:
    uid = uid_for(r.id)
    c = await r.connect(uid, "/flood/")
    got = await asyncio.gather(*(settle(c.call("echo", i)) for i in range(2000)))
    check(any("value" in o for o in got), "no call went through")
    check(any(o.get("code") in ("RATE_LIMITED", "DISCONNECTED") for o in got), "nothing was refused")
    await until(lambda: c.state == "closed", 2000, "the flooding client to be closed")
    check(c.close_info and c.close_info.code == 4029, f"closed with {c.close_info}, want 4029")
    await asyncio.sleep(0.3)
    await r.verdict(uid)


async def until_kit(cond: Callable[[], Awaitable[bool]], ms: float, what: str) -> None:
    """Wait until a condition asked of the kit holds."""
    end = time.monotonic() + ms / 1000
    while not await cond():
        check(time.monotonic() < end, f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@case("12.1")
async def _12_1(r: Run) -> None:
    c = await r.connect()
    got = [x async for x in c.stream("countTo", 50)]
    check(got == list(range(50)), f"items {show(got)}")

    async def idle() -> bool:
        return (await r.counters())["pending"]["incoming"] == 0  # type: ignore[no-any-return]

    await until_kit(idle, 2000, "nothing pending on the server")


@case("12.2")
async def _12_2(r: Run) -> None:
    uid = uid_for(r.id)
    c = await r.connect(uid)
    key = f"k-{uid}"
    got: list[Any] = []
    async for x in c.stream("countTo", 1_000_000, key):
        got.append(x)
        if len(got) == 3:
            break  # dropping the stream gives its call up ($cancel)
    check(got == [0, 1, 2], f"items {show(got)}")

    async def stopped() -> bool:
        return (await r.counters())["cancelled"].get(key) == 1  # type: ignore[no-any-return]

    await until_kit(stopped, 2000, "the server's generator to stop")


@case("12.3")
async def _12_3(r: Run) -> None:
    c = await r.connect()
    got: list[Any] = []

    async def read() -> None:
        async for x in c.stream("failAfter", 2, "GAME_OVER"):
            got.append(x)

    e = await rejects(read(), "GAME_OVER")
    check(got == [0, 1], f"items {show(got)} before {e['code']}")
    check(await c.call("echo", 7) == 7, "the session stays")


@case("12.4")
async def _12_4(r: Run) -> None:
    c = await r.connect()
    v = await c.call("sumUpload", 100)
    check(same(v, {"sum": 5050, "items": 100}), f"answer {show(v)}")


@case("12.5")
async def _12_5(r: Run) -> None:
    uid = uid_for(r.id)
    c = await r.connect(uid)
    got: list[Any] = []
    async for x in c.stream("countTo", 2000):
        got.append(x)
        if len(got) == 500:
            await r.http("POST", "/kit/drop", uid=uid)
    wrong = next((i for i, x in enumerate(got) if x != i), -1)
    check(len(got) == 2000 and wrong < 0, f"{len(got)} items, first out of place at {wrong}")
    check(c.opens[1:2] == [True], f"reopened with resumed {c.opens[1:]}")  # type: ignore[attr-defined]
    await r.verdict(uid)


@case("12.6")
async def _12_6(r: Run) -> None:
    c = await r.connect()
    o = await settle(c.call("countTo", 3))
    check(o.get("code") in ("CANCELLED", "METHOD_NOT_FOUND"), f"the plain call got {o.get('code') or 'result ' + show(o.get('value'))}")
    check(await c.call("echo", 1) == 1, "the session stays")


class UpTo:
    """An upload (SPEC §12): the integers 1 … n from an async generator; after item ``fail_after`` it
    raises ``code``; before item ``at`` it awaits ``run()``. Counts what it produced and whether its
    cleanup (``finally``) ran."""

    def __init__(self, n: int, fail_after: int | None = None, code: str = "", at: int = 0,
                 run: Callable[[], Awaitable[Any]] | None = None) -> None:
        self.n, self.fail_after, self.code, self.at, self.run = n, fail_after, code, at, run
        self.produced, self.closed = 0, False

    async def gen(self) -> AsyncIterator[int]:
        try:
            for i in range(1, self.n + 1):
                if self.fail_after is not None and i > self.fail_after:
                    raise RpcError(self.code, "the upload failed")
                if i == self.at and self.run is not None:
                    await self.run()
                self.produced += 1
                yield i
        finally:
            self.closed = True


@case("12.7")
async def _12_7(r: Run) -> None:
    uid = uid_for(r.id)
    c = await r.connect(uid)
    v = await c.call("sumStream", UpTo(100).gen())
    check(same(v, {"sum": 5050, "items": 100, "inOrder": True}), f"answer {show(v)}")
    await r.verdict(uid)


@case("12.8")
async def _12_8(r: Run) -> None:
    c = await r.connect()
    up = UpTo(1_000_000)
    v = await c.call("takeUpload", 3, up.gen())
    check(v == [1, 2, 3], f"answer {show(v)}")
    await until(lambda: up.closed, 2000, "the upload's generator to be closed")
    check(up.produced <= 3 + 2 * 16, f"{up.produced} items produced")


@case("12.9")
async def _12_9(r: Run) -> None:
    c = await r.connect()
    v = await c.call("uploadError", UpTo(10, fail_after=2, code="BAD_CHUNK").gen())
    check(same(v, {"items": 2, "code": "BAD_CHUNK"}), f"answer {show(v)}")
    check(await c.call("echo", 1) == 1, "the session stays")


@case("12.10")
async def _12_10(r: Run) -> None:
    await script(r)


@case("12.11")
async def _12_11(r: Run) -> None:
    uid = uid_for(r.id)
    c = await r.connect(uid)
    up = UpTo(2000, at=500, run=lambda: r.http("POST", "/kit/drop", uid=uid))
    v = await c.call("sumStream", up.gen(), timeout=20)
    check(same(v, {"sum": 2001000, "items": 2000, "inOrder": True}), f"answer {show(v)}")
    check(c.opens[1:2] == [True], f"reopened with resumed {c.opens[1:]}")  # type: ignore[attr-defined]
    await r.verdict(uid)


@case("12.12")
async def _12_12(r: Run) -> None:
    await script(r)
    check(await r.clients[0].call("echo", 1) == 1, "the session stays")


@case("12.13")
async def _12_13(r: Run) -> None:
    uid = uid_for(r.id)
    c = await r.connect(uid)
    got = [x async for x in c.stream("countTo", 50)]
    check(got == list(range(50)), f"items {show(got)}")
    await r.verdict(uid)


# ---- running them -----------------------------------------------------------------------


async def run_all(base: str, only: set[str] | None = None, log: Callable[[str], None] = print) -> list[tuple[str, str, bool, str]]:
    results = []
    for c in CASE_LIST:
        if only and c["id"] not in only:
            continue
        fn = CASES.get(c["id"])
        run = Run(base, c["id"], "/" if c["path"] == "-" else c["path"])
        t0 = time.monotonic()
        detail = ""
        if fn is None:
            ok, detail = False, "no implementation in the Python runner"
        else:
            try:
                await asyncio.wait_for(fn(run), 25)
                ok = True
            except asyncio.TimeoutError:
                ok, detail = False, "case took over 25 s"
            except Exception as e:
                ok, detail = False, str(e) or repr(e)
        await run.close()
        results.append((c["id"], c["title"], ok, detail))
        ms = f" ({(time.monotonic() - t0) * 1000:.0f} ms)" if os.environ.get("KIT_TIMES") else ""
        log(f"{'PASS' if ok else 'FAIL'} {c['id']} {c['title']}{'' if ok else ' — ' + detail}{ms}")
    passed = sum(1 for r in results if r[2])
    log(f"{passed} passed, {len(results) - passed} failed")
    return results


def main() -> None:
    args = sys.argv[1:]
    if "--url" not in args or args.index("--url") + 1 >= len(args):
        sys.exit("usage: kit_runner.py --url http://127.0.0.1:<port> [case ids…]")
    at = args.index("--url")
    base = args[at + 1].rstrip("/")
    ids = set(args[:at] + args[at + 2 :])
    results = asyncio.run(run_all(base, ids or None, lambda line: print(line, flush=True)))
    sys.exit(0 if all(r[2] for r in results) else 1)


if __name__ == "__main__":
    main()
