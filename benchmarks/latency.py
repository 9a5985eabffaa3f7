"""One-shot reads: ``get(DRF)`` and ``get_many(N)`` through each acnet-proto adapter and pacsys.

Run from the repository root::

    .venv/bin/python benchmarks/latency.py [--json results.json] [--samples 5000] [--rounds 10]
    .venv/bin/python benchmarks/latency.py --quick      # a smoke run, well under a minute

Every contender reads from the same server process, in one run:
acnet-proto's ``SyncClient``, threaded ``DPMBackend``, ``AsyncioDPMBackend``
and ``TrioDPMBackend``, and pacsys 0.3.0's ``pacsys.dpm()`` backend. Each
``get`` is a full DPM list on a pooled, already-open connection:
``AddToList`` + ``StartList`` in one write, the replies, then ``StopList`` +
``ClearList``, the same messages for all.

A sixth row, ``floor``, is no client library at all: a bare socket
(``_bare.py``) writing those same requests, encoded once, and splitting and
decoding the replies until the data replies are in, with no state machine
and no ``Reading``. It is about the least any client could take, so it
shows how much of a read is the server's and the kernel's.

Two servers, each a process of its own (``_harness.py``), so that their work
does not share the GIL with the client being timed: the simulator (``sim``)
and the reference server (``ref``, ``reference_server.py``: prepared
frames, little CPU per read). ``get`` runs against both; ``get_many`` of
``Z:SIM0000`` ... (``--many`` sizes, 1,000 and 10,000 by default) against
``--many-servers`` (the reference server by default). The server's CPU
time per read is read from ``/proc`` and printed beside the client's own
(``time.process_time`` of this process, all its threads, around the timed
calls): on a loaded machine those two say more than wall-clock times about
where a read's time goes.

Timing: ``--rounds`` rounds (``--many-rounds`` for ``get_many``); in each,
every contender (in an order rotated from round to round, so slow drifts
of the machine's load fall on all) opens its client, makes ``--warmup``
untimed calls (one for ``get_many``), then its timed ones
(``time.perf_counter`` around each call, the garbage collector left on, as
in a user's program), then closes. p50 and p99 are over all of a
contender's samples. Ratios are ours over pacsys's (below 1: better).

The issue's targets, judged against the reference server, close the
report with PASS or MISS: client CPU per ``get`` at most 0.5x pacsys's for
sync and threaded and 0.7x for asyncio and trio, sync's ``get`` p50 at most
0.5x, and ``get_many(1000)``'s wall time at most 0.3x for every adapter.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import pacsys
from _bare import BareList, one_shot
from _harness import (
    CONTENDERS,
    OURS,
    SERVER_NAMES,
    SERVERS,
    ServerProcess,
    machine,
    percentile,
    print_load_after,
    print_machine,
    run_async,
    server_process,
    take_turns,
    verdict,
    write_json,
)

from acnet_proto.adapters.dpm.sync import SyncClient
from acnet_proto.adapters.dpm.threaded import DPMBackend

# The targets, as the most a ratio to pacsys may be (against the reference server).
TARGET_GET_CPU = {"sync": 0.5, "threaded": 0.5, "asyncio": 0.7, "trio": 0.7}
TARGET_GET_P50 = {"sync": 0.5}
TARGET_MANY_SIZE = 1000
TARGET_MANY_WALL = 0.3
TARGET_SERVER = "ref"

# for get_many and a floor's socket (a loaded machine must not fail a 10,000-entry read);
# get keeps each client's default, as user code does
_TIMEOUT = 60.0


@dataclass
class Block:
    """One contender's timed calls in one round."""

    samples: list[float]  # seconds per call
    client_cpu: float  # this process's CPU seconds over the timed calls
    server_cpu: float  # the server's CPU seconds over the timed calls


@dataclass
class Summary:
    """One contender's calls of one kind (``get``, ``get_many(N)``) against one server."""

    call: str
    server: str
    contender: str
    samples: int
    p50_us: float
    p90_us: float
    p99_us: float
    max_us: float
    mean_us: float
    round_p50_us: list[float]
    client_cpu_us: float  # per call
    server_cpu_us: float  # per call
    p50_ratio: float | None = None  # ours / pacsys
    p99_ratio: float | None = None
    cpu_ratio: float | None = None  # client CPU, ours / pacsys


class _Answer(NamedTuple):
    """What the floor returns: enough for :func:`_check`."""

    ok: bool
    message: str


def _check(result: Any, who: str) -> None:
    for reading in result if isinstance(result, list) else [result]:
        if not reading.ok:
            raise RuntimeError(f"{who}: a read failed: {reading.message}")


def _time_blocking(
    who: str, call: Callable[[], Any], warmup: int, n: int, server: ServerProcess
) -> Block:
    for _ in range(warmup):
        _check(call(), who)
    samples = [0.0] * n
    clock = time.perf_counter
    cpu0, server0 = time.process_time(), server.cpu_seconds()
    for i in range(n):
        start = clock()
        result = call()
        samples[i] = clock() - start
        _check(result, who)
    return Block(samples, time.process_time() - cpu0, server.cpu_seconds() - server0)


async def _time_async(
    who: str, call: Callable[[], Awaitable[Any]], warmup: int, n: int, server: ServerProcess
) -> Block:
    for _ in range(warmup):
        _check(await call(), who)
    samples = [0.0] * n
    clock = time.perf_counter
    cpu0, server0 = time.process_time(), server.cpu_seconds()
    for i in range(n):
        start = clock()
        result = await call()
        samples[i] = clock() - start
        _check(result, who)
    return Block(samples, time.process_time() - cpu0, server.cpu_seconds() - server0)


def run_block(
    who: str, server: ServerProcess, drfs: list[str], many: bool, warmup: int, n: int
) -> Block:
    """Open ``who``'s client on ``server``, warm it up, time ``n`` calls, close it.

    A call is ``get(drfs[0])``, or ``get_many(drfs)`` if ``many``."""
    host, port = server.host, server.port
    if who == "floor":
        floor = BareList(host, port, _TIMEOUT)
        try:
            request = floor.start([one_shot(d) for d in drfs])

            def read() -> _Answer:
                failed = floor.read(request, len(drfs))
                return _Answer(failed == 0, f"{failed} replies not ok")

            return _time_blocking(who, read, warmup, n, server)
        finally:
            floor.close()
    if who in ("sync", "threaded", "pacsys"):
        if who == "sync":
            opened: Any = SyncClient(host, port)
        elif who == "threaded":
            opened = DPMBackend(host, port)
        else:
            opened = pacsys.dpm(host=host, port=port)
        with opened as client:
            call = (
                (lambda: client.get_many(drfs, _TIMEOUT)) if many else (lambda: client.get(drfs[0]))
            )
            return _time_blocking(who, call, warmup, n, server)

    async def timed(backend_class: Any) -> Block:
        async with backend_class(host, port) as client:
            call = (
                (lambda: client.get_many(drfs, _TIMEOUT)) if many else (lambda: client.get(drfs[0]))
            )
            return await _time_async(who, call, warmup, n, server)

    return run_async(who, timed)  # asyncio or trio


def summarize(call: str, server: str, who: str, blocks: list[Block]) -> Summary:
    ordered = sorted(s for b in blocks for s in b.samples)
    n = len(ordered)
    us = 1e6
    return Summary(
        call=call,
        server=server,
        contender=who,
        samples=n,
        p50_us=percentile(ordered, 50) * us,
        p90_us=percentile(ordered, 90) * us,
        p99_us=percentile(ordered, 99) * us,
        max_us=ordered[-1] * us,
        mean_us=statistics.fmean(ordered) * us,
        round_p50_us=[statistics.median(b.samples) * us for b in blocks],
        client_cpu_us=sum(b.client_cpu for b in blocks) / n * us,
        server_cpu_us=sum(b.server_cpu for b in blocks) / n * us,
    )


def compare(summaries: list[Summary]) -> None:
    """Fill in each summary's ratios to pacsys's (when pacsys ran)."""
    pac = next((s for s in summaries if s.contender == "pacsys"), None)
    if pac is None:
        return
    for s in summaries:
        if s is not pac:
            s.p50_ratio = s.p50_us / pac.p50_us
            s.p99_ratio = s.p99_us / pac.p99_us
            s.cpu_ratio = s.client_cpu_us / pac.client_cpu_us


@dataclass
class Plan:
    """What to run: the contenders, and the calls' sizes, counts and rounds."""

    contenders: list[str]
    servers: list[str]
    drf: str
    samples: int
    rounds: int
    warmup: int
    many: list[int]
    many_servers: list[str]
    many_rounds: int

    @property
    def per_round(self) -> int:
        return -(-self.samples // self.rounds)

    def many_calls(self, size: int, quick: bool) -> int:
        """Timed ``get_many(size)`` calls per contender per round: about 10,000 reads."""
        return 1 if quick else max(2, 10_000 // size)


@dataclass
class Failure:
    """A contender that raised: it is left out of the later rounds of that call."""

    call: str
    server: str
    contender: str
    error: str


def run_server(
    name: str, plan: Plan, quick: bool, failed: list[Failure]
) -> tuple[list[Summary], dict[str, Any]]:
    """Every call ``plan`` has for server ``name``, all contenders, in rounds; the
    contenders that fail are added to ``failed``."""
    results: list[Summary] = []
    with server_process(name) as server:
        where = {"host": server.host, "port": server.port, "pid": server.pid}
        address = f"{server.host}:{server.port}"
        print(f"{SERVER_NAMES[name]} pid {server.pid} on {address}", file=sys.stderr)
        kinds: list[tuple[str, list[str], bool, int, int, int]] = []
        if name in plan.servers:
            kinds.append(("get", [plan.drf], False, plan.rounds, plan.warmup, plan.per_round))
        if name in plan.many_servers:
            for size in plan.many:
                drfs = [f"Z:SIM{i:04d}" for i in range(size)]
                calls = plan.many_calls(size, quick)
                kinds.append((f"get_many({size})", drfs, True, plan.many_rounds, 1, calls))
        for call, drfs, many, rounds, warmup, n in kinds:

            def block(who: str, _round: int) -> Block:
                return run_block(who, server, drfs, many, warmup, n)  # noqa: B023 -- called now

            blocks, broke = take_turns(plan.contenders, rounds, block, f"{name} {call}")
            summaries = [summarize(call, name, who, got) for who, got in blocks.items()]
            compare(summaries)
            results.extend(summaries)
            failed.extend(Failure(call, name, who, error) for who, error in broke.items())
    return results, where


@dataclass
class Target:
    what: str
    contender: str
    bound: float  # the most the ratio to pacsys may be
    ratio: float | None
    verdict: str


def targets(summaries: list[Summary]) -> list[Target]:
    """The issue's targets, judged on the reference server's runs."""

    def ratio(call: str, who: str, field: str) -> float | None:
        for s in summaries:
            if (s.call, s.server, s.contender) == (call, TARGET_SERVER, who):
                value: float | None = getattr(s, field)
                return value
        return None

    found = []
    many = f"get_many({TARGET_MANY_SIZE})"
    for who in OURS:
        checks = [("client CPU per get", "get", "cpu_ratio", TARGET_GET_CPU[who])]
        if who in TARGET_GET_P50:
            checks.append(("get p50", "get", "p50_ratio", TARGET_GET_P50[who]))
        checks.append((f"{many} wall p50", many, "p50_ratio", TARGET_MANY_WALL))
        for what, call, field, bound in checks:
            measured = ratio(call, who, field)
            found.append(Target(what, who, bound, measured, verdict(measured, bound)))
    return found


def print_table(rows: list[Summary]) -> None:
    first = rows[0]
    ms = first.call != "get"
    unit, scale = ("ms", 1e-3) if ms else ("µs", 1.0)
    where = SERVER_NAMES[first.server]
    print()
    print(f"{first.call} against the {where}: {first.samples:,} timed calls per contender")
    head = (
        f"{'contender':<10} {'p50 ' + unit:>9} {'p90 ' + unit:>9} {'p99 ' + unit:>9} "
        f"{'max ' + unit:>9} {'p50/pac':>8} {'p99/pac':>8} {'client CPU':>12} {'CPU/pac':>8} "
        f"{'server CPU':>12} {'round p50 range':>17}"
    )
    print(head)
    print("-" * len(head))

    def ratio(x: float | None) -> str:
        return f"{x:>7.2f}x" if x is not None else f"{'—':>8}"

    for s in rows:
        spread = f"{min(s.round_p50_us) * scale:,.1f}..{max(s.round_p50_us) * scale:,.1f}"
        print(
            f"{s.contender:<10} {s.p50_us * scale:>9,.1f} {s.p90_us * scale:>9,.1f} "
            f"{s.p99_us * scale:>9,.1f} {s.max_us * scale:>9,.1f} {ratio(s.p50_ratio)} "
            f"{ratio(s.p99_ratio)} {s.client_cpu_us * scale:>9,.1f} {unit} {ratio(s.cpu_ratio)} "
            f"{s.server_cpu_us * scale:>9,.1f} {unit} {spread:>17}"
        )


def print_report(summaries: list[Summary], failed: list[Failure], found: list[Target]) -> None:
    groups: dict[tuple[str, str], list[Summary]] = {}
    for s in summaries:
        groups.setdefault((s.call, s.server), []).append(s)
    for rows in groups.values():
        print_table(rows)
    if failed:
        print()
    for f in failed:
        print(f"{f.call} against the {SERVER_NAMES[f.server]}: {f.contender} FAILED: {f.error}")
    print(
        "client CPU and server CPU: CPU time per call of this process (all threads) and of "
        "the server process (/proc); ratios: ours / pacsys (below 1: better)"
    )
    print()
    print(f"targets (ratio to pacsys, against the {SERVER_NAMES[TARGET_SERVER]}):")
    for t in found:
        measured = f"{t.ratio:.2f}x" if t.ratio is not None else "not run"
        print(f"  {t.contender:<9} {t.what:<28} ≤ {t.bound:g}x: {measured:>8}  {t.verdict}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", metavar="FILE", help="also write the results to FILE as JSON")
    parser.add_argument(
        "--samples", type=int, default=5000, help="timed gets per contender per server (5000)"
    )
    parser.add_argument("--rounds", type=int, default=10, help="rounds of get (default 10)")
    parser.add_argument(
        "--warmup", type=int, default=100, help="untimed gets per contender per round (100)"
    )
    parser.add_argument("--drf", default="M:OUTTMP", help="what get reads (default M:OUTTMP)")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=CONTENDERS,
        default=list(CONTENDERS),
        metavar="NAME",
        help=f"contenders to run (default all: {' '.join(CONTENDERS)})",
    )
    parser.add_argument(
        "--servers",
        nargs="*",
        choices=SERVERS,
        default=list(SERVERS),
        help="servers get runs against (default both: sim ref)",
    )
    parser.add_argument(
        "--many",
        nargs="*",
        type=int,
        default=[1000, 10_000],
        metavar="N",
        help="get_many sizes, Z:SIM0000 .. (default 1000 10000; none: skip get_many)",
    )
    parser.add_argument(
        "--many-servers",
        nargs="*",
        choices=SERVERS,
        default=["ref"],
        help="servers get_many runs against (default ref)",
    )
    parser.add_argument("--many-rounds", type=int, default=4, help="rounds of get_many (4)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: 200 gets in 2 rounds, 10 warm-up, one get_many round of one call",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.samples, args.rounds, args.warmup, args.many_rounds = 200, 2, 10, 1
    if args.samples < args.rounds or args.rounds < 1 or args.warmup < 0 or args.many_rounds < 1:
        parser.error("need --rounds >= 1, --samples >= --rounds, --warmup >= 0, --many-rounds >= 1")
    if not all(1 <= n <= 10_000 for n in args.many):
        parser.error("get_many reads Z:SIM0000 .. Z:SIM9999: sizes must be 1..10000")

    plan = Plan(
        contenders=args.only,
        servers=args.servers,
        drf=args.drf,
        samples=args.samples,
        rounds=args.rounds,
        warmup=args.warmup,
        many=args.many,
        many_servers=args.many_servers if args.many else [],
        many_rounds=args.many_rounds,
    )
    info = machine()
    print_machine(info)
    summaries: list[Summary] = []
    failed: list[Failure] = []
    where: dict[str, Any] = {}
    for name in SERVERS:
        if name in plan.servers or name in plan.many_servers:
            found, where[name] = run_server(name, plan, args.quick, failed)
            summaries.extend(found)
    verdicts = targets(summaries)
    print_report(summaries, failed, verdicts)
    load_after = print_load_after()

    if args.json:
        doc = {
            "machine": info,
            "load_average_after": load_after,
            "servers": where,
            "method": {
                "drf": args.drf,
                "gets_per_round": plan.per_round,
                "rounds": args.rounds,
                "warmup_per_round": args.warmup,
                "many_sizes": plan.many,
                "many_calls_per_round": {n: plan.many_calls(n, args.quick) for n in plan.many},
                "many_rounds": args.many_rounds,
                "quick": args.quick,
                "ratio": "ours / pacsys (below 1: better)",
                "target_server": TARGET_SERVER,
            },
            "results": [asdict(s) for s in summaries],
            "failed": [asdict(f) for f in failed],
            "targets": [asdict(t) for t in verdicts],
        }
        write_json(args.json, doc)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
