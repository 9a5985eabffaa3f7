"""Streaming: readings per second delivered to user code, and memory under a slow consumer.

Run from the repository root::

    .venv/bin/python benchmarks/stream.py [--json results.json] [--entries 1000] [--period-ms 10]
    .venv/bin/python benchmarks/stream.py --skip-memory      # throughput only, about 3 minutes
    .venv/bin/python benchmarks/stream.py --skip-throughput  # the memory check only
    .venv/bin/python benchmarks/stream.py --quick            # a smoke run, under a minute

**Throughput.** Each contender subscribes to ``Z:SIM0000@p,10`` ...
``Z:SIM0999@p,10`` (``--entries``, ``--period-ms``) on a server process of
its own (so that its work does not share the GIL with the client) and
iterates the subscription's ``readings()``, as user code does; what that
loop receives per second is the figure. It runs against both servers
(``--servers``): the simulator (``sim``) and the reference server (``ref``,
``reference_server.py``: prepared frames, little CPU per reading).
Contenders: acnet-proto's ``SyncClient``, threaded ``DPMBackend``,
``AsyncioDPMBackend`` and ``TrioDPMBackend``, and pacsys 0.3.0's
``pacsys.dpm()`` backend. A further row, ``floor``, is a bare socket
(``_bare.py``) that only counts the frames it receives (no decoding at all):
it is the rate the server can send, so an adapter well below it is the
bottleneck itself, and one at it is held back by the server. Each round
runs every contender in turn (order rotated per round): subscribe, warm up
(``--warmup`` seconds, at least two readings per entry), count for
``--seconds``, stop. The client's CPU time (``time.process_time``, all its
threads) and the server's (``/proc``) over the counted window give the
CPU cost per reading, the figure that load from other processes on a shared
machine disturbs least. The issue's target closes the report with PASS or
MISS: at most 6 µs of client CPU per streamed reading for every adapter,
against the reference server (the readings/s of each adapter at least 3x
pacsys's is the earlier target, kept beside it).

**Memory.** Against the simulator (``--memory-server``), in a child process
of its own per contender, a 10,000-entry
subscription (``Z:SIM0000`` ... ``Z:SIM9999`` at ``--memory-period-ms``) is
read by a deliberately slow consumer (``--consumer-delay`` seconds of sleep
per reading) for ``--memory-seconds``; this process samples the child's RSS
once a second. The threaded backend and pacsys hold readings in a bounded
queue (10,000) and count what they turn away in ``handle.dropped``; the
asyncio adapter reads the socket only when asked, so the server is held
back by TCP instead (the simulator then skips the periods it missed) and
nothing is dropped client-side.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from typing import Any

import pacsys
import trio
from _bare import BareList
from _harness import (
    CONTENDERS,
    OURS,
    SERVER_NAMES,
    SERVERS,
    ServerProcess,
    error_text,
    machine,
    print_load_after,
    print_machine,
    rss_bytes,
    run_async,
    server_process,
    take_turns,
    verdict,
    write_json,
)

from acnet_proto.adapters.dpm.sync import SyncClient
from acnet_proto.adapters.dpm.threaded import DPMBackend

MEMORY_CONTENDERS = ("threaded", "asyncio", "trio", "sync", "pacsys")
# The earlier target: readings/s at least this multiple of pacsys's.
TARGET_RATIO = 3.0
# The target: client CPU per streamed reading at most this, against TARGET_SERVER.
TARGET_CPU_US = 6.0
TARGET_SERVER = "ref"
# How long a stream may go without a reading before the round is called failed.
_QUIET = 10.0


def drfs_for(entries: int, period_ms: int) -> list[str]:
    return [f"Z:SIM{i:04d}@p,{period_ms}" for i in range(entries)]


# ------------------------------------------------------------------ throughput


@dataclass
class Window:
    """One contender's counted window in one round."""

    readings: int
    seconds: float
    client_cpu: float
    server_cpu: float


class _Counter:
    """Counts readings: warm-up first, then a timed window; ``take`` says when to stop."""

    def __init__(
        self, warm_readings: int, warm_seconds: float, seconds: float, server: ServerProcess
    ) -> None:
        self._warm_readings = warm_readings
        self._warm_until = time.perf_counter() + warm_seconds
        self._seconds = seconds
        self._server = server
        self._n = 0
        self._start = 0.0
        self._end = float("inf")
        self._cpu0 = self._server0 = 0.0
        self.window: Window | None = None

    def take(self, count: int = 1) -> bool:
        """Note ``count`` readings; True once the window is over."""
        self._n += count
        now = time.perf_counter()
        if self._start == 0.0:
            if self._n >= self._warm_readings and now >= self._warm_until:
                self._start, self._end, self._n = now, now + self._seconds, 0
                self._cpu0, self._server0 = time.process_time(), self._server.cpu_seconds()
            return False
        if now < self._end:
            return False
        self.window = Window(
            self._n,
            now - self._start,
            time.process_time() - self._cpu0,
            self._server.cpu_seconds() - self._server0,
        )
        return True

    def result(self, who: str) -> Window:
        if self.window is None:
            raise RuntimeError(f"{who}: the stream went quiet for {_QUIET} s before the end")
        return self.window


def _count_blocking(counter: _Counter, readings: Iterator[tuple[Any, Any]]) -> None:
    for reading, _handle in readings:
        reading.value  # noqa: B018 -- user code looks at the value
        if counter.take():
            return


async def _count_async(counter: _Counter, readings: AsyncIterator[tuple[Any, Any]]) -> None:
    async for reading, _handle in readings:
        reading.value  # noqa: B018 -- user code looks at the value
        if counter.take():
            return


def _floor(counter: _Counter, host: str, port: int, drfs: list[str]) -> None:
    """Subscribe with a bare socket, then count frames off it without decoding them."""
    floor = BareList(host, port, _QUIET)
    try:
        floor.sock.sendall(floor.start(drfs))
        while not counter.take(floor.count()):
            pass
    finally:
        floor.close()


def run_window(
    who: str, server: ServerProcess, drfs: list[str], warmup: float, seconds: float
) -> Window:
    """Subscribe ``who`` to ``drfs`` on ``server``, warm up, count for ``seconds``, stop."""
    host, port = server.host, server.port
    counter = _Counter(2 * len(drfs), warmup, seconds, server)
    if who == "floor":
        _floor(counter, host, port, drfs)
    elif who == "sync":
        with SyncClient(host, port) as client, client.subscribe(drfs) as sub:
            _count_blocking(counter, sub.readings(timeout=_QUIET))
    elif who == "threaded":
        with DPMBackend(host, port) as backend, backend.subscribe(drfs) as sub:
            _count_blocking(counter, sub.readings(timeout=_QUIET))
    elif who == "pacsys":
        with pacsys.dpm(host=host, port=port) as backend:
            handle = backend.subscribe(drfs)
            try:
                # pacsys's readings(timeout) is a deadline for the whole iteration
                _count_blocking(counter, handle.readings(timeout=warmup + seconds + _QUIET))
            finally:
                handle.stop()
    else:

        async def count(backend_class: Any) -> None:
            async with (
                backend_class(host, port) as backend,
                await backend.subscribe(drfs) as sub,
            ):
                await _count_async(counter, sub.readings(timeout=_QUIET))

        run_async(who, count)  # asyncio or trio
    return counter.result(who)


@dataclass
class Throughput:
    server: str
    contender: str
    readings_per_s: float  # over all rounds
    round_rates: list[float]
    client_cpu_us: float  # per reading
    server_cpu_us: float  # per reading
    client_cpu_share: float  # client CPU seconds per wall second (1.0: one core)
    ratio: float | None = None  # readings/s over pacsys's
    cpu_ratio: float | None = None  # pacsys's CPU per reading over ours
    verdict: str | None = None  # readings/s at least TARGET_RATIO x pacsys's
    cpu_verdict: str | None = None  # client CPU per reading at most TARGET_CPU_US


def summarize(server: str, who: str, windows: list[Window]) -> Throughput:
    readings = sum(w.readings for w in windows)
    seconds = sum(w.seconds for w in windows)
    return Throughput(
        server=server,
        contender=who,
        readings_per_s=readings / seconds,
        round_rates=[w.readings / w.seconds for w in windows],
        client_cpu_us=sum(w.client_cpu for w in windows) / readings * 1e6,
        server_cpu_us=sum(w.server_cpu for w in windows) / readings * 1e6,
        client_cpu_share=sum(w.client_cpu for w in windows) / seconds,
    )


def run_throughput(
    server_name: str,
    contenders: list[str],
    drfs: list[str],
    rounds: int,
    warmup: float,
    seconds: float,
) -> tuple[list[Throughput], dict[str, str]]:
    """Every contender's windows against server ``server_name``, in rounds; and the
    contenders that failed (their error)."""
    with server_process(server_name) as server:
        name = SERVER_NAMES[server_name]
        print(f"{name} pid {server.pid} on {server.host}:{server.port}", file=sys.stderr)

        def window(who: str, r: int) -> Window:
            w = run_window(who, server, drfs, warmup, seconds)
            rate = w.readings / w.seconds
            print(f"  {server_name} round {r + 1}: {who} {rate:,.0f}/s", file=sys.stderr)
            return w

        windows, failed = take_turns(contenders, rounds, window, server_name)
    results = [summarize(server_name, who, got) for who, got in windows.items()]
    pac = next((t for t in results if t.contender == "pacsys"), None)
    for t in results:
        if pac is not None and t is not pac:
            t.ratio = t.readings_per_s / pac.readings_per_s
            t.cpu_ratio = pac.client_cpu_us / t.client_cpu_us
        if t.contender in OURS:
            if t.ratio is not None:
                t.verdict = "PASS" if t.ratio >= TARGET_RATIO else "MISS"
            t.cpu_verdict = verdict(t.client_cpu_us, TARGET_CPU_US)
    return results, failed


def print_throughput(
    server: str,
    results: list[Throughput],
    failed: dict[str, str],
    drfs: list[str],
    rounds: int,
    seconds: float,
) -> None:
    print()
    print(
        f"subscribe {drfs[0]} .. {drfs[-1]} ({len(drfs)} entries) on the "
        f"{SERVER_NAMES[server]}: {rounds} rounds x {seconds:g} s per contender"
    )
    head = (
        f"{'contender':<10} {'readings/s':>11} {'vs pacsys':>9} {'round range':>17} "
        f"{'client CPU/reading':>18} {'CPU vs pacsys':>13} {'client CPU':>10} "
        f"{'server CPU/reading':>18}  ≥ {TARGET_RATIO:g}x pacsys, ≤ {TARGET_CPU_US:g} µs"
    )
    print(head)
    print("-" * len(head))
    for t in results:
        ratio = f"{t.ratio:>8.1f}x" if t.ratio is not None else f"{'—':>9}"
        cpu_ratio = f"{t.cpu_ratio:>12.1f}x" if t.cpu_ratio is not None else f"{'—':>13}"
        spread = f"{min(t.round_rates):,.0f}..{max(t.round_rates):,.0f}"
        print(
            f"{t.contender:<10} {t.readings_per_s:>11,.0f} {ratio} {spread:>17} "
            f"{t.client_cpu_us:>15,.1f} µs {cpu_ratio} {t.client_cpu_share:>9.0%} "
            f"{t.server_cpu_us:>15,.1f} µs  {t.verdict or ''} {t.cpu_verdict or ''}"
        )
    for who, error in failed.items():
        print(f"{who:<10} FAILED: {error}")
    print(
        "client CPU: this process's CPU seconds per wall second (100% = one core); "
        "CPU vs pacsys: pacsys's CPU per reading over ours (above 1: better); "
        "floor counts frames only (the server's send rate)"
    )


def print_targets(results: list[Throughput]) -> None:
    print()
    print(
        f"target: client CPU per streamed reading ≤ {TARGET_CPU_US:g} µs, against the "
        f"{SERVER_NAMES[TARGET_SERVER]}:"
    )
    for who in OURS:
        found = [t for t in results if (t.server, t.contender) == (TARGET_SERVER, who)]
        measured = f"{found[0].client_cpu_us:.1f} µs" if found else "not run"
        print(f"  {who:<9} {measured:>9}  {found[0].cpu_verdict if found else '—'}")


# ------------------------------------------------------------------ memory


def _memory_child(
    pipe: Connection, who: str, host: str, port: int, drfs: list[str], delay: float, seconds: float
) -> None:
    """In a child process: stream ``drfs`` to a consumer that sleeps ``delay`` per reading.

    Sends ``(elapsed, consumed, dropped)`` about once a second, then ``None``.
    """
    start = time.monotonic()
    state = {"consumed": 0, "next_report": start + 1.0}

    def note(handle: Any) -> bool:
        state["consumed"] += 1
        now = time.monotonic()
        if now >= state["next_report"]:
            state["next_report"] = now + 1.0
            pipe.send((now - start, state["consumed"], getattr(handle, "dropped", None)))
        return now - start >= seconds

    if who in ("threaded", "pacsys", "sync"):
        if who == "threaded":
            opened: Any = DPMBackend(host, port)
        elif who == "pacsys":
            opened = pacsys.dpm(host=host, port=port)
        else:
            opened = SyncClient(host, port)
        with opened as backend:
            handle = backend.subscribe(drfs)
            try:
                for _reading, h in handle.readings(timeout=seconds + _QUIET):
                    time.sleep(delay)
                    if note(h):
                        break
            finally:
                handle.stop()
    else:

        async def consume(sub: Any, sleep: Callable[[float], Any]) -> None:
            async for _reading, h in sub.readings(timeout=_QUIET):
                await sleep(delay)
                if note(h):
                    break

        async def main(backend_class: Any) -> None:
            async with (
                backend_class(host, port) as backend,
                await backend.subscribe(drfs) as sub,
            ):
                await consume(sub, asyncio.sleep if who == "asyncio" else trio.sleep)

        run_async(who, main)
    pipe.send(None)


@dataclass
class MemoryRun:
    contender: str
    samples: list[tuple[float, int]]  # (seconds since subscribing, client RSS bytes)
    server_rss: list[tuple[float, int]]
    consumed: int
    dropped: int | None
    rss_after_5s_mb: float
    rss_end_mb: float
    rss_max_mb: float
    growth_after_5s_mb: float


def run_memory(
    who: str, server: ServerProcess, drfs: list[str], delay: float, seconds: float
) -> MemoryRun:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(
        target=_memory_child, args=(child, who, server.host, server.port, drfs, delay, seconds)
    )
    proc.start()
    child.close()
    pid = proc.pid
    assert pid is not None  # started
    start = time.monotonic()
    samples: list[tuple[float, int]] = []
    server_rss: list[tuple[float, int]] = []
    consumed, dropped = 0, None
    next_sample = start
    done = False
    try:
        while not done:
            timeout = max(0.0, next_sample - time.monotonic())
            if parent.poll(timeout):
                try:
                    message = parent.recv()
                except EOFError:
                    raise RuntimeError(f"memory child for {who} died") from None
                if message is None:
                    done = True
                else:
                    _, consumed, dropped = message
            if time.monotonic() >= next_sample and not done:
                t = time.monotonic() - start
                samples.append((t, rss_bytes(pid)))
                server_rss.append((t, server.rss_bytes()))
                next_sample += 1.0
            if time.monotonic() - start > seconds + 3 * _QUIET:
                raise RuntimeError(f"memory child for {who} did not finish")
    finally:
        proc.join(10)
        if proc.is_alive():
            proc.kill()
            proc.join()
    mb = 1 / 2**20
    late = [rss for t, rss in samples if t >= 5.0] or [samples[-1][1]]
    return MemoryRun(
        contender=who,
        samples=samples,
        server_rss=server_rss,
        consumed=consumed,
        dropped=dropped,
        rss_after_5s_mb=late[0] * mb,
        rss_end_mb=samples[-1][1] * mb,
        rss_max_mb=max(rss for _, rss in samples) * mb,
        growth_after_5s_mb=(late[-1] - late[0]) * mb,
    )


def print_memory(runs: list[MemoryRun], drfs: list[str], delay: float) -> None:
    print()
    print(
        f"memory: {len(drfs):,} entries ({drfs[0]} .. {drfs[-1]}), consumer sleeps "
        f"{delay * 1e3:g} ms per reading; client RSS sampled each second"
    )
    head = (
        f"{'contender':<10} {'RSS at 5 s':>10} {'RSS at end':>10} {'max':>8} "
        f"{'growth 5 s..end':>15} {'consumed':>9} {'dropped':>9}"
    )
    print(head)
    print("-" * len(head))
    for m in runs:
        dropped = f"{m.dropped:,}" if m.dropped is not None else "—"
        print(
            f"{m.contender:<10} {m.rss_after_5s_mb:>7.1f} MB {m.rss_end_mb:>7.1f} MB "
            f"{m.rss_max_mb:>5.1f} MB {m.growth_after_5s_mb:>+12.1f} MB "
            f"{m.consumed:>9,} {dropped:>9}"
        )
    for m in runs:
        trace = " ".join(f"{rss / 2**20:.0f}" for _, rss in m.samples)
        print(f"  {m.contender} RSS MB, once a second: {trace}")
    if runs:
        trace = " ".join(f"{rss / 2**20:.0f}" for _, rss in runs[-1].server_rss)
        print(f"  server RSS MB during the last run: {trace}")


# ------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", metavar="FILE", help="also write the results to FILE as JSON")
    parser.add_argument("--entries", type=int, default=1000, help="entries (default 1000)")
    parser.add_argument("--period-ms", type=int, default=10, help="@p period (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--seconds", type=float, default=3.0, help="counted s per round (3)")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up s per round (1)")
    parser.add_argument(
        "--servers",
        nargs="+",
        choices=SERVERS,
        default=list(SERVERS),
        help="servers the throughput runs against (default both: sim ref)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=CONTENDERS,
        default=list(CONTENDERS),
        metavar="NAME",
        help=f"throughput contenders (default all: {' '.join(CONTENDERS)})",
    )
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument(
        "--memory-only",
        nargs="+",
        choices=MEMORY_CONTENDERS,
        default=["threaded", "asyncio", "pacsys"],
        metavar="NAME",
        help="memory-check contenders (default: threaded asyncio pacsys)",
    )
    parser.add_argument("--memory-entries", type=int, default=10_000, help="(default 10000)")
    parser.add_argument("--memory-period-ms", type=int, default=1000, help="(default 1000)")
    parser.add_argument("--memory-seconds", type=float, default=20.0, help="(default 20)")
    parser.add_argument(
        "--memory-server", choices=SERVERS, default="sim", help="(default sim, the simulator)"
    )
    parser.add_argument(
        "--consumer-delay", type=float, default=0.001, help="s of sleep per reading (0.001)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: 100 entries, one round of 1 s, 0.5 s warm-up; "
        "memory: 1,000 entries for 6 s",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.entries, args.rounds, args.seconds, args.warmup = 100, 1, 1.0, 0.5
        args.memory_entries, args.memory_seconds = 1000, 6.0
    if not 1 <= args.entries <= 10_000 or not 1 <= args.memory_entries <= 10_000:
        parser.error("the streams are Z:SIM0000 .. Z:SIM9999: entries must be 1..10000")
    if args.rounds < 1 or args.seconds <= 0 or args.warmup < 0 or args.period_ms < 1:
        parser.error("need --rounds >= 1, --seconds > 0, --warmup >= 0, --period-ms >= 1")

    info = machine()
    print_machine(info)
    doc: dict[str, Any] = {"machine": info}
    failed: list[dict[str, str]] = []
    if not args.skip_throughput:
        drfs = drfs_for(args.entries, args.period_ms)
        results = []
        for name in args.servers:
            found, broke = run_throughput(
                name, args.only, drfs, args.rounds, args.warmup, args.seconds
            )
            print_throughput(name, found, broke, drfs, args.rounds, args.seconds)
            results.extend(found)
            failed.extend(
                {"part": "throughput", "server": name, "contender": who, "error": e}
                for who, e in broke.items()
            )
        print_targets(results)
        doc["throughput"] = {
            "method": {
                "entries": args.entries,
                "period_ms": args.period_ms,
                "nominal_readings_per_s": args.entries * 1000 / args.period_ms,
                "rounds": args.rounds,
                "seconds_per_round": args.seconds,
                "warmup_s": args.warmup,
                "quick": args.quick,
                "target_ratio": TARGET_RATIO,
                "target_cpu_us": TARGET_CPU_US,
                "target_server": TARGET_SERVER,
            },
            "results": [asdict(t) for t in results],
        }
    if not args.skip_memory:
        drfs = drfs_for(args.memory_entries, args.memory_period_ms)
        runs = []
        with server_process(args.memory_server) as server:
            for who in args.memory_only:
                print(f"  memory: {who} for {args.memory_seconds:g} s", file=sys.stderr)
                delay, seconds = args.consumer_delay, args.memory_seconds
                try:
                    runs.append(run_memory(who, server, drfs, delay, seconds))
                except Exception as exc:  # reported, and the run goes on
                    error = error_text(exc)
                    print(f"  memory: {who} FAILED: {error}", file=sys.stderr)
                    failed.append(
                        {
                            "part": "memory",
                            "server": args.memory_server,
                            "contender": who,
                            "error": error,
                        }
                    )
        print_memory(runs, drfs, args.consumer_delay)
        doc["memory"] = {
            "method": {
                "server": args.memory_server,
                "entries": args.memory_entries,
                "period_ms": args.memory_period_ms,
                "seconds": args.memory_seconds,
                "consumer_delay_s": args.consumer_delay,
            },
            "results": [asdict(m) for m in runs],
        }
    doc["failed"] = failed
    for f in failed:
        print(
            f"{f['part']} on the {SERVER_NAMES[f['server']]}: {f['contender']} FAILED: {f['error']}"
        )
    doc["load_average_after"] = print_load_after()
    if args.json:
        write_json(args.json, doc)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
