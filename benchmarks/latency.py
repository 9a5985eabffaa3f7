"""One-shot read latency: ``get(DRF)`` through each acnet-proto adapter and pacsys, one simulator.

Run from the repository root::

    .venv/bin/python benchmarks/latency.py [--json results.json] [--samples 2000] [--rounds 10]

Every contender reads the same device from the same simulator instance, in
one run: acnet-proto's ``SyncClient``, threaded ``DPMBackend``,
``AsyncioDPMBackend`` and ``TrioDPMBackend``, and pacsys 0.3.0's
``pacsys.dpm()`` backend. Each ``get`` is a full DPM list on a pooled,
already-open connection: ``AddToList`` + ``StartList`` in one write, the
replies, then ``StopList`` + ``ClearList``, the same messages for all.

A sixth row, ``floor``, is no client library at all: a bare socket writing
those same bytes, prepared once, and splitting and decoding the replies
until the data reply is in, with no state machine and no ``Reading``. It is
about the least any client could take against this simulator, so it shows
how much of a read is the server's and the kernel's.

The simulator is ``python -m acnet_proto.adapters.cli.main sim --port 0`` in a process of
its own (its banner gives the port), so that its work does not share the GIL
with the client being timed. Its CPU time per read is read from ``/proc``
and printed beside the client's own (``time.process_time``): on a loaded
machine those two say more than wall-clock times about where a read's time
goes.

Timing: ``--rounds`` rounds; in each, every contender (in an order rotated
from round to round, so slow drifts of the machine's load fall on all)
opens its client, makes ``--warmup`` untimed reads, then ``samples/rounds``
timed ones (``time.perf_counter`` around each call, the garbage collector
left on, as in a user's program), then closes. p50 and p99 are over all of
a contender's samples. The ratio is ours over pacsys's (below 1: faster).
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
from _harness import (
    CONTENDERS,
    OURS,
    SimProcess,
    machine,
    percentile,
    print_load_after,
    print_machine,
    rotations,
    run_async,
    write_json,
)

from acnet_proto.adapters.dpm._blocking import _Link
from acnet_proto.adapters.dpm.sync import SyncClient
from acnet_proto.adapters.dpm.threaded import DPMBackend
from acnet_proto.engine.framing import FrameSplitter
from acnet_proto.pc import dpm
from acnet_proto.plans.lists import ReadBatch

# The target: our p50 at most this fraction of pacsys's.
TARGET_P50_RATIO = 0.5


@dataclass
class Block:
    """One contender's timed reads in one round."""

    samples: list[float]  # seconds per get
    client_cpu: float  # this process's CPU seconds over the timed reads
    sim_cpu: float  # the simulator's CPU seconds over the timed reads


@dataclass
class Summary:
    contender: str
    samples: int
    p50_us: float
    p90_us: float
    p99_us: float
    max_us: float
    mean_us: float
    round_p50_us: list[float]
    client_cpu_us: float  # per read
    sim_cpu_us: float  # per read
    p50_ratio: float | None = None  # ours / pacsys
    p99_ratio: float | None = None
    verdict: str | None = None


def _check(reading: Any, who: str) -> None:
    if not reading.ok:
        raise RuntimeError(f"{who}: the read failed: {reading.message}")


def _time_blocking(who: str, get: Callable[[], Any], warmup: int, n: int, sim: SimProcess) -> Block:
    for _ in range(warmup):
        _check(get(), who)
    samples = [0.0] * n
    clock = time.perf_counter
    cpu0, sim0 = time.process_time(), sim.cpu_seconds()
    for i in range(n):
        start = clock()
        reading = get()
        samples[i] = clock() - start
        _check(reading, who)
    return Block(samples, time.process_time() - cpu0, sim.cpu_seconds() - sim0)


async def _time_async(
    who: str, get: Callable[[], Awaitable[Any]], warmup: int, n: int, sim: SimProcess
) -> Block:
    for _ in range(warmup):
        _check(await get(), who)
    samples = [0.0] * n
    clock = time.perf_counter
    cpu0, sim0 = time.process_time(), sim.cpu_seconds()
    for i in range(n):
        start = clock()
        reading = await get()
        samples[i] = clock() - start
        _check(reading, who)
    return Block(samples, time.process_time() - cpu0, sim.cpu_seconds() - sim0)


class _Answer(NamedTuple):
    """What the floor's ``get`` returns: enough for :func:`_check`."""

    ok: bool
    message: str


class _Floor:
    """A bare socket replaying one read's request bytes; its replies are only decoded."""

    def __init__(self, host: str, port: int, drf: str) -> None:
        # one real read through the engine yields the exact bytes to repeat
        self._link = _Link(host, port, time.monotonic() + 10)
        batch = ReadBatch([drf])
        self._begin = self._link.client.begin(batch)
        self._link.send(self._begin)
        while not batch.done:
            self._link.pump(time.monotonic() + 10)
        self._end = self._link.client.end()
        self._link.send(self._end)
        self._link.sock.settimeout(10)
        self._splitter = FrameSplitter()

    def get(self) -> _Answer:
        sock, splitter = self._link.sock, self._splitter
        sock.sendall(self._begin)
        while True:
            for data in splitter.feed(sock.recv(262144)):
                reply = dpm.decode_reply(data)
                if type(reply) is dpm.ScalarReply:
                    sock.sendall(self._end)
                    return _Answer(reply.status == 0, f"status {reply.status}")

    def close(self) -> None:
        self._link.close()


def run_block(who: str, sim: SimProcess, drf: str, warmup: int, n: int) -> Block:
    """Open ``who``'s client on ``sim``, warm it up, time ``n`` reads, close it."""
    host, port = sim.host, sim.port
    if who == "sync":
        with SyncClient(host, port) as client:
            return _time_blocking(who, lambda: client.get(drf), warmup, n, sim)
    if who == "threaded":
        with DPMBackend(host, port) as backend:
            return _time_blocking(who, lambda: backend.get(drf), warmup, n, sim)
    if who == "pacsys":
        with pacsys.dpm(host=host, port=port) as backend:
            return _time_blocking(who, lambda: backend.get(drf), warmup, n, sim)
    if who == "floor":
        floor = _Floor(host, port, drf)
        try:
            return _time_blocking(who, floor.get, warmup, n, sim)
        finally:
            floor.close()

    async def timed(backend_class: Any) -> Block:
        async with backend_class(host, port) as backend:
            return await _time_async(who, lambda: backend.get(drf), warmup, n, sim)

    return run_async(who, timed)  # asyncio or trio


def summarize(who: str, blocks: list[Block]) -> Summary:
    ordered = sorted(s for b in blocks for s in b.samples)
    n = len(ordered)
    us = 1e6
    return Summary(
        contender=who,
        samples=n,
        p50_us=percentile(ordered, 50) * us,
        p90_us=percentile(ordered, 90) * us,
        p99_us=percentile(ordered, 99) * us,
        max_us=ordered[-1] * us,
        mean_us=statistics.fmean(ordered) * us,
        round_p50_us=[statistics.median(b.samples) * us for b in blocks],
        client_cpu_us=sum(b.client_cpu for b in blocks) / n * us,
        sim_cpu_us=sum(b.sim_cpu for b in blocks) / n * us,
    )


def run(
    contenders: list[str], drf: str, samples: int, rounds: int, warmup: int
) -> tuple[list[Summary], dict[str, Any]]:
    per_round = -(-samples // rounds)
    blocks: dict[str, list[Block]] = {who: [] for who in contenders}
    with SimProcess() as sim:
        where = {"host": sim.host, "port": sim.port, "pid": sim.pid}
        print(f"simulator pid {sim.pid} on {sim.host}:{sim.port}", file=sys.stderr)
        for r, order in rotations(contenders, rounds):
            for who in order:
                blocks[who].append(run_block(who, sim, drf, warmup, per_round))
            print(f"  round {r + 1}/{rounds} done", file=sys.stderr)
    summaries = [summarize(who, blocks[who]) for who in contenders]
    pac = next((s for s in summaries if s.contender == "pacsys"), None)
    if pac is not None:
        for s in summaries:
            if s is not pac:
                s.p50_ratio = s.p50_us / pac.p50_us
                s.p99_ratio = s.p99_us / pac.p99_us
            if s.contender in OURS:
                s.verdict = "PASS" if s.p50_ratio <= TARGET_P50_RATIO else "MISS"
    return summaries, where


def print_report(drf: str, summaries: list[Summary], per_round: int, rounds: int) -> None:
    print()
    print(f"get({drf!r}): {per_round} timed reads x {rounds} rounds per contender")
    head = (
        f"{'contender':<10} {'p50 µs':>8} {'p90 µs':>8} {'p99 µs':>8} {'max µs':>8} "
        f"{'p50/pac':>8} {'p99/pac':>8} {'client CPU':>11} {'sim CPU':>8} "
        f"{'round p50 range':>16}  target p50 ≤ {TARGET_P50_RATIO:g}x pacsys"
    )
    print(head)
    print("-" * len(head))
    for s in summaries:
        ratios = (
            f"{s.p50_ratio:>7.2f}x {s.p99_ratio:>7.2f}x"
            if s.p50_ratio is not None and s.p99_ratio is not None
            else f"{'—':>8} {'—':>8}"
        )
        spread = f"{min(s.round_p50_us):,.0f}..{max(s.round_p50_us):,.0f}"
        print(
            f"{s.contender:<10} {s.p50_us:>8,.0f} {s.p90_us:>8,.0f} {s.p99_us:>8,.0f} "
            f"{s.max_us:>8,.0f} {ratios} {s.client_cpu_us:>8,.0f} µs {s.sim_cpu_us:>5,.0f} µs "
            f"{spread:>16}  {s.verdict or ''}"
        )
    print(
        "client CPU and sim CPU: CPU time per read of this process and of the simulator "
        "process (/proc)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", metavar="FILE", help="also write the results to FILE as JSON")
    parser.add_argument(
        "--samples", type=int, default=2000, help="timed reads per contender (default 2000)"
    )
    parser.add_argument("--rounds", type=int, default=10, help="rounds (default 10)")
    parser.add_argument(
        "--warmup", type=int, default=100, help="untimed reads per contender per round (100)"
    )
    parser.add_argument("--drf", default="M:OUTTMP", help="what to read (default M:OUTTMP)")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=CONTENDERS,
        default=list(CONTENDERS),
        metavar="NAME",
        help=f"contenders to run (default all: {' '.join(CONTENDERS)})",
    )
    args = parser.parse_args(argv)
    if args.samples < args.rounds or args.rounds < 1 or args.warmup < 0:
        parser.error("need --rounds >= 1, --samples >= --rounds and --warmup >= 0")

    info = machine()
    print_machine(info)
    summaries, where = run(args.only, args.drf, args.samples, args.rounds, args.warmup)
    per_round = -(-args.samples // args.rounds)
    print_report(args.drf, summaries, per_round, args.rounds)
    load_after = print_load_after()

    if args.json:
        doc = {
            "machine": info,
            "load_average_after": load_after,
            "simulator": where,
            "method": {
                "drf": args.drf,
                "reads_per_round": per_round,
                "rounds": args.rounds,
                "warmup_per_round": args.warmup,
                "ratio": "ours / pacsys (below 1: faster)",
                "target_p50_ratio": TARGET_P50_RATIO,
            },
            "results": [asdict(s) for s in summaries],
        }
        write_json(args.json, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
