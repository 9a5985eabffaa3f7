"""Soak: many clients streaming at 10 Hz from one simulator for a while; counts, delays, memory.

Run from the repository root (not part of CI; it takes ``--duration`` plus
about 20 s)::

    .venv/bin/python benchmarks/soak.py [--clients 100] [--entries 100] [--duration 60]
                                        [--adapter threaded] [--processes 1] [--max-age 5]
                                        [--json FILE]

``--clients`` independent clients (each its own backend and its own
subscription, so its own connection) each subscribe to ``--entries``
devices at ``@p,100`` (``--period-ms``): client ``i`` takes ``Z:SIM`` numbers
``i * entries`` onwards, so the default 100 x 100 covers ``Z:SIM0000`` ..
``Z:SIM9999`` once. The clients run in ``--processes`` worker processes
(default 1) and the simulator in another (as ``acnet-proto sim --port 0`` runs
it, with room for a stream from every client: they share one address, and its
default limits let one peer have 16). The threaded backend delivers to a callback (its default
``DispatchMode.WORKER``); the asyncio and trio ones run a task per client
iterating ``readings()``.

Once every client has its first reading and ``--warmup`` seconds have
passed, a window of ``--duration`` seconds opens for all workers at one
wall-clock instant. In it each client counts the readings its user code
sees and, for each, the delivery delay: the time it is seen
(``time.time()``) minus the reading's timestamp, which the simulator
stamps when it builds the reply (in whole milliseconds, rounded, so delays
are good to about ±0.5 ms). Expected readings are clients x entries x
duration / period. Each subscription bounds how late its readings may
reach user code (``--max-age``, the library's default unless given; 0 turns
the bound off): what a client skips to stay within it comes as gaps, whose
``skipped`` readings are counted, so the report shows whether the delivery
delay's p99 stayed within the bound and what that cost. This process
samples the RSS and CPU time of the workers and of the simulator every
``--sample-every`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing
import statistics
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import trio
from _harness import (
    ServerProcess,
    cpu_seconds,
    machine,
    print_load_after,
    print_machine,
    rss_bytes,
    write_json,
)

from acnet_proto.adapters.dpm.asyncio import AsyncioDPMBackend
from acnet_proto.adapters.dpm.threaded import DPMBackend
from acnet_proto.adapters.dpm.trio import TrioDPMBackend
from acnet_proto.streams.reconnect import Gap
from acnet_proto.streams.staleness import DEFAULT_MAX_AGE

ADAPTERS = ("threaded", "asyncio", "trio")
# The simulator as `acnet-proto sim` runs it, but taking a stream from every client: they all
# come from one address, and its default limits allow one peer 16 (a lab-like guard).
_SIM = """
import asyncio, sys
from acnet_proto.adapters.sim.dpm import serve
from acnet_proto.limits import ServerLimits

streams = int(sys.argv[1])
limits = ServerLimits(max_streams_per_peer=streams, max_streams=streams)


def ready(server):
    print(f"simulated DPM on {server.host}:{server.port} (soak)", flush=True)


try:
    asyncio.run(serve(port=0, ready=ready, limits=limits))
except KeyboardInterrupt:
    pass
"""
_FAMILY = 10_000  # Z:SIM0000 .. Z:SIM9999
# Generous: in a worker saturated by its streams, every thread waits long for the GIL.
_READY_TIMEOUT = 300.0  # for every client of a worker to have its first reading
_REPORT_TIMEOUT = 300.0  # from the window's end to a worker's report
_CLOSE_TIMEOUT = 300.0  # for a worker to stop all its clients

# Delay histogram: bins 1 % wide from 0.01 ms up (to about 17 minutes), so any
# percentile is good to 1 % in fixed memory; bin 0 holds delays <= 0.01 ms.
_LOWEST_MS = 0.01
_STEP = math.log(1.01)
_BINS = 2000


def _bin(delay_ms: float) -> int:
    if delay_ms <= _LOWEST_MS:
        return 0
    return min(_BINS - 1, int(math.log(delay_ms / _LOWEST_MS) / _STEP) + 1)


def _bin_upper_ms(index: int) -> float:
    """The upper edge of bin ``index`` (inf for the last, which holds everything beyond)."""
    if index == _BINS - 1:
        return float("inf")
    return _LOWEST_MS * math.exp(index * _STEP)


def histogram_percentile(hist: list[int], q: float) -> float:
    """The upper edge (ms) of the bin holding the ``q``-th percentile."""
    total = sum(hist)
    if not total:
        return float("nan")
    rank = -(-total * q // 100)
    seen = 0
    for index, count in enumerate(hist):
        seen += count
        if seen >= rank:
            return _bin_upper_ms(index)
    return float("inf")


def drfs_for(client: int, entries: int, period_ms: int) -> list[str]:
    first = client * entries
    return [f"Z:SIM{(first + j) % _FAMILY:04d}@p,{period_ms}" for j in range(entries)]


# ------------------------------------------------------------------ worker side


class _Window:
    """The counting window every client of a worker shares (wall-clock seconds)."""

    start = float("inf")
    end = float("inf")
    interval = 5.0

    def __init__(self) -> None:
        self.born = time.monotonic()  # when the worker began subscribing


class _Client:
    """What one client saw: its callback (or task) calls :meth:`note` per reading."""

    def __init__(self, window: _Window) -> None:
        self.window = window
        self.seen_any = False
        self.delivered = 0
        self.hist = [0] * _BINS
        self.max_delay_ms = 0.0
        self.per_interval: list[int] = []
        self.max_delay_per_interval: list[float] = []
        self.errors = 0
        self.error_examples: list[str] = []
        self.gaps = 0
        self.skipped = 0

    def note(self, reading: Any) -> None:
        now = time.time()
        self.seen_any = True
        w = self.window
        if not w.start <= now < w.end:
            return
        if isinstance(reading, Gap):
            self.gaps += 1
            self.skipped += reading.skipped
            if not reading.skipped:  # an outage: the connection died
                self._count_error(f"outage: {reading}")
            return
        if not reading.ok:
            self._count_error(f"{reading.drf}: {reading.message}")
            return
        self.delivered += 1
        delay_ms = (now - reading.timestamp.timestamp()) * 1e3
        self.hist[_bin(delay_ms)] += 1
        if delay_ms > self.max_delay_ms:
            self.max_delay_ms = delay_ms
        slot = int((now - w.start) / w.interval)
        while len(self.per_interval) <= slot:
            self.per_interval.append(0)
            self.max_delay_per_interval.append(0.0)
        self.per_interval[slot] += 1
        if delay_ms > self.max_delay_per_interval[slot]:
            self.max_delay_per_interval[slot] = delay_ms

    def error(self, exc: BaseException) -> None:
        """The stream died (``on_error``, or raised by ``readings()``)."""
        self._count_error(f"stream lost: {type(exc).__name__}: {exc}")

    def _count_error(self, text: str) -> None:
        self.errors += 1
        if len(self.error_examples) < 5:
            self.error_examples.append(text)


def _wait_ready(clients: list[_Client]) -> None:
    deadline = time.monotonic() + _READY_TIMEOUT
    while not all(c.seen_any for c in clients):
        if time.monotonic() > deadline:
            missing = sum(not c.seen_any for c in clients)
            raise RuntimeError(f"{missing} clients got no reading within {_READY_TIMEOUT} s")
        time.sleep(0.1)


def _sum_columns(rows: list[list[int]]) -> list[int]:
    """Element-wise sum of lists of possibly different lengths."""
    total: list[int] = []
    for row in rows:
        total.extend([0] * (len(row) - len(total)))
        for i, n in enumerate(row):
            total[i] += n
    return total


def _max_columns(rows: list[list[float]]) -> list[float]:
    """Element-wise maximum of lists of possibly different lengths."""
    top: list[float] = []
    for row in rows:
        top.extend([0.0] * (len(row) - len(top)))
        top[: len(row)] = map(max, top, row)
    return top


def _report(clients: list[_Client], dropped: list[int] | None) -> dict[str, Any]:
    return {
        "delivered": [c.delivered for c in clients],
        "dropped": dropped,
        "errors": sum(c.errors for c in clients),
        "gaps": sum(c.gaps for c in clients),
        "skipped": sum(c.skipped for c in clients),
        "error_examples": [e for c in clients for e in c.error_examples][:5],
        "hist": _sum_columns([c.hist for c in clients]),
        "max_delay_ms": max(c.max_delay_ms for c in clients),
        "per_interval": _sum_columns([c.per_interval for c in clients]),
        "max_delay_per_interval": _max_columns([c.max_delay_per_interval for c in clients]),
    }


def _threaded_worker(
    pipe: Connection,
    host: str,
    port: int,
    lists: list[list[str]],
    window: _Window,
    max_age: float | None,
) -> None:
    clients = [_Client(window) for _ in lists]
    backends: list[DPMBackend] = []
    try:
        subscriptions = []
        for client, drfs in zip(clients, lists):
            backend = DPMBackend(host, port)
            backends.append(backend)
            subscriptions.append(
                backend.subscribe(
                    drfs,
                    callback=lambda reading, _handle, c=client: c.note(reading),
                    on_error=lambda exc, _handle, c=client: c.error(exc),
                    max_age=max_age,
                )
            )
        _wait_ready(clients)
        pipe.send(("ready", time.monotonic() - window.born))
        window.start, window.end = pipe.recv()
        time.sleep(max(0.0, window.end - time.time()) + 0.5)
        pipe.send(("done", _report(clients, [s.dropped for s in subscriptions])))
    finally:
        # all at once: closed one by one, each would wait for readers starved
        # of the GIL by the streams still running
        started = time.monotonic()
        closers = [threading.Thread(target=b.close) for b in backends]
        for closer in closers:
            closer.start()
        for closer in closers:
            closer.join()
        pipe.send(("closed", time.monotonic() - started))


def _async_worker(
    pipe: Connection,
    host: str,
    port: int,
    lists: list[list[str]],
    window: _Window,
    flavour: str,
    max_age: float | None,
) -> None:
    clients = [_Client(window) for _ in lists]

    async def consume(subscription: Any, client: _Client) -> None:
        try:
            async for reading, _handle in subscription.readings():
                client.note(reading)
        except Exception as exc:  # a stream that died: counted, the others go on
            client.error(exc)

    def report() -> None:
        # nothing is queued, so nothing is dropped: TCP holds the server back
        pipe.send(("done", _report(clients, None)))

    async def run_asyncio() -> None:
        backends = [AsyncioDPMBackend(host, port) for _ in lists]
        try:
            subscriptions = [await b.subscribe(d, max_age=max_age) for b, d in zip(backends, lists)]
            tasks = [asyncio.create_task(consume(s, c)) for s, c in zip(subscriptions, clients)]
            await asyncio.to_thread(_wait_ready, clients)
            pipe.send(("ready", time.monotonic() - window.born))
            window.start, window.end = await asyncio.to_thread(pipe.recv)
            await asyncio.sleep(max(0.0, window.end - time.time()) + 0.5)
            report()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            started = time.monotonic()
            await asyncio.gather(*(b.aclose() for b in backends))
            pipe.send(("closed", time.monotonic() - started))

    async def run_trio() -> None:
        backends = [TrioDPMBackend(host, port) for _ in lists]
        try:
            subscriptions = [await b.subscribe(d, max_age=max_age) for b, d in zip(backends, lists)]
            async with trio.open_nursery() as nursery:
                for s, c in zip(subscriptions, clients):
                    nursery.start_soon(consume, s, c)
                await trio.to_thread.run_sync(_wait_ready, clients)
                pipe.send(("ready", time.monotonic() - window.born))
                window.start, window.end = await trio.to_thread.run_sync(pipe.recv)
                await trio.sleep(max(0.0, window.end - time.time()) + 0.5)
                report()
                nursery.cancel_scope.cancel()
        finally:
            started = time.monotonic()
            async with trio.open_nursery() as nursery:
                for backend in backends:
                    nursery.start_soon(backend.aclose)
            pipe.send(("closed", time.monotonic() - started))

    if flavour == "asyncio":
        asyncio.run(run_asyncio())
    else:
        trio.run(run_trio)


def _worker(
    pipe: Connection,
    adapter: str,
    host: str,
    port: int,
    lists: list[list[str]],
    interval: float,
    max_age: float | None,
) -> None:
    """One worker process: its clients stream until the window closes, report, then close.

    Sends ``("ready", seconds)``, receives the window, then ``("done", report)``
    and ``("closed", seconds the closing took)``.
    """
    window = _Window()
    window.interval = interval
    try:
        if adapter == "threaded":
            _threaded_worker(pipe, host, port, lists, window, max_age)
        else:
            _async_worker(pipe, host, port, lists, window, adapter, max_age)
    except BaseException as exc:
        pipe.send(("failed", f"{type(exc).__name__}: {exc}"))
        raise


# ------------------------------------------------------------------ orchestrator


@dataclass
class Sample:
    t: float  # seconds since the window opened
    worker_rss_mb: list[float]
    worker_cpu: list[float]  # share of one core since the previous sample
    sim_rss_mb: float
    sim_cpu: float


@dataclass
class SoakResult:
    clients: int
    entries: int
    period_ms: int
    duration_s: float
    adapter: str
    processes: int
    expected: int
    delivered: int
    delivered_fraction: float
    per_client_fraction_min: float
    per_client_fraction_median: float
    per_client_fraction_max: float
    dropped: int | None  # None: the adapter queues nothing, so drops nothing
    errors: int  # error readings, outages and lost streams
    error_examples: list[str]
    max_age_s: float | None  # the subscriptions' bound on lateness; None: none
    gaps: int  # gaps delivered in the window (readings skipped, or an outage)
    skipped: int  # readings skipped to stay within max_age, counted by those gaps
    delay_p50_ms: float
    delay_p99_ms: float
    delay_p999_ms: float
    delay_max_ms: float
    rate_per_interval: list[float]
    max_delay_ms_per_interval: list[float]
    startup_seconds: float  # subscribing until every client had a reading (slowest worker)
    close_seconds: float | None  # stopping every client after the window; None: timed out
    samples: list[Sample] = field(default_factory=list)


def _spread(items: list[Any], parts: int) -> list[list[Any]]:
    return [items[i::parts] for i in range(parts)]


def run(args: argparse.Namespace) -> SoakResult:
    lists = [drfs_for(i, args.entries, args.period_ms) for i in range(args.clients)]
    ctx = multiprocessing.get_context("spawn")
    procs: list[Any] = []
    pipes: list[Connection] = []
    samples: list[Sample] = []
    results: list[dict[str, Any]] = []
    close_seconds = None
    startup_seconds = 0.0
    streams = max(args.clients, 128)  # 128: the default limit of all peers together
    with ServerProcess([sys.executable, "-c", _SIM, str(streams)]) as sim:
        print(f"simulator pid {sim.pid} on {sim.host}:{sim.port}", file=sys.stderr)
        try:
            for part in _spread(lists, args.processes):
                here, there = ctx.Pipe()
                proc = ctx.Process(
                    target=_worker,
                    args=(
                        there,
                        args.adapter,
                        sim.host,
                        sim.port,
                        part,
                        args.sample_every,
                        args.max_age or None,
                    ),
                )
                proc.start()
                there.close()
                procs.append(proc)
                pipes.append(here)
            startup_seconds = max(_expect(pipe, "ready", _READY_TIMEOUT + 30) for pipe in pipes)
            print(
                f"  {args.clients} clients streaming after {startup_seconds:.1f} s; "
                f"warm-up {args.warmup:g} s",
                file=sys.stderr,
            )
            start = time.time() + args.warmup
            end = start + args.duration
            for pipe in pipes:
                pipe.send((start, end))
            samples = _sample(procs, sim, start, end, args.sample_every)
            for pipe in pipes:
                results.append(_expect(pipe, "done", _REPORT_TIMEOUT))
            print("  window closed; stopping the clients", file=sys.stderr)
            try:
                close_seconds = max(_expect(pipe, "closed", _CLOSE_TIMEOUT) for pipe in pipes)
            except RuntimeError as exc:
                print(f"  {exc}", file=sys.stderr)
        finally:
            for proc in procs:
                proc.join(30)
                if proc.is_alive():
                    proc.kill()
                    proc.join()
    return _summarize(args, results, samples, startup_seconds, close_seconds)


def _expect(pipe: Connection, what: str, timeout: float) -> Any:
    if not pipe.poll(timeout):
        raise RuntimeError(f"a worker sent nothing for {timeout:g} s (waiting for {what!r})")
    message = pipe.recv()
    if isinstance(message, tuple) and message[0] == "failed":
        raise RuntimeError(f"a worker failed: {message[1]}")
    if isinstance(message, tuple) and message[0] == what:
        return message[1]
    raise RuntimeError(f"a worker sent {message!r}, not {what!r}")


def _sample(
    procs: list[Any], sim: ServerProcess, start: float, end: float, every: float
) -> list[Sample]:
    """RSS and CPU share of each worker and of the simulator, every ``every`` s of the window."""
    samples = []
    pids = [p.pid for p in procs]
    # the first sample, at the window's start, has the warm-up's CPU share
    last_t = time.time()
    last_cpu = [cpu_seconds(pid) for pid in pids]
    last_sim = sim.cpu_seconds()
    due = start
    while due <= end + 0.01:
        time.sleep(max(0.0, due - time.time()))
        now = time.time()
        cpu = [cpu_seconds(pid) for pid in pids]
        sim_cpu = sim.cpu_seconds()
        span = now - last_t
        samples.append(
            Sample(
                t=now - start,
                worker_rss_mb=[rss_bytes(pid) / 2**20 for pid in pids],
                worker_cpu=[(c - c0) / span for c, c0 in zip(cpu, last_cpu)],
                sim_rss_mb=sim.rss_bytes() / 2**20,
                sim_cpu=(sim_cpu - last_sim) / span,
            )
        )
        print(
            f"  t={now - start:5.0f} s  client RSS {sum(samples[-1].worker_rss_mb):6.1f} MB "
            f"CPU {sum(samples[-1].worker_cpu):4.0%}  sim RSS {samples[-1].sim_rss_mb:6.1f} MB "
            f"CPU {samples[-1].sim_cpu:4.0%}",
            file=sys.stderr,
        )
        last_t, last_cpu, last_sim = now, cpu, sim_cpu
        due += every
    return samples


def _summarize(
    args: argparse.Namespace,
    results: list[dict[str, Any]],
    samples: list[Sample],
    startup_seconds: float,
    close_seconds: float | None,
) -> SoakResult:
    delivered_each = [n for r in results for n in r["delivered"]]
    per_client_expected = args.entries * args.duration * 1000 / args.period_ms
    expected = round(per_client_expected * args.clients)
    hist = _sum_columns([r["hist"] for r in results])
    intervals = _sum_columns([r["per_interval"] for r in results])
    dropped = [n for r in results for n in r["dropped"] or ()]
    fractions = sorted(n / per_client_expected for n in delivered_each)
    return SoakResult(
        clients=args.clients,
        entries=args.entries,
        period_ms=args.period_ms,
        duration_s=args.duration,
        adapter=args.adapter,
        processes=args.processes,
        expected=expected,
        delivered=sum(delivered_each),
        delivered_fraction=sum(delivered_each) / expected,
        per_client_fraction_min=fractions[0],
        per_client_fraction_median=statistics.median(fractions),
        per_client_fraction_max=fractions[-1],
        dropped=sum(dropped) if results[0]["dropped"] is not None else None,
        errors=sum(r["errors"] for r in results),
        error_examples=[e for r in results for e in r["error_examples"]][:5],
        max_age_s=args.max_age or None,
        gaps=sum(r["gaps"] for r in results),
        skipped=sum(r["skipped"] for r in results),
        delay_p50_ms=histogram_percentile(hist, 50),
        delay_p99_ms=histogram_percentile(hist, 99),
        delay_p999_ms=histogram_percentile(hist, 99.9),
        delay_max_ms=max(r["max_delay_ms"] for r in results),
        rate_per_interval=[n / args.sample_every for n in intervals],
        max_delay_ms_per_interval=_max_columns([r["max_delay_per_interval"] for r in results]),
        startup_seconds=startup_seconds,
        close_seconds=close_seconds,
        samples=samples,
    )


def _ms(x: float) -> str:
    return f"{x:,.0f} ms" if x >= 100 else f"{x:.3g} ms"


def print_report(r: SoakResult) -> None:
    nominal = r.clients * r.entries * 1000 / r.period_ms
    print()
    print(
        f"{r.clients} clients x {r.entries} entries @p,{r.period_ms} ({nominal:,.0f} readings/s "
        f"nominal), {r.adapter} adapter in {r.processes} process(es), {r.duration_s:g} s window"
    )
    print(
        f"delivered {r.delivered:,} of {r.expected:,} expected ({r.delivered_fraction:.1%}); "
        f"per client {r.per_client_fraction_min:.1%} min, {r.per_client_fraction_median:.1%} "
        f"median, {r.per_client_fraction_max:.1%} max"
    )
    dropped = "none queued (TCP holds the server back)" if r.dropped is None else f"{r.dropped:,}"
    print(f"dropped by client queues: {dropped}; errors (error readings, lost streams): {r.errors}")
    for e in r.error_examples:
        print(f"  {e}")
    if r.max_age_s is None:
        print("staleness bound: none (max_age=None): every reading delivered however late")
    else:
        within = "within" if r.delay_p99_ms <= r.max_age_s * 1e3 else "NOT within"
        print(
            f"staleness bound max_age {r.max_age_s:g} s: {r.skipped:,} readings skipped in "
            f"{r.gaps:,} gaps; delay p99 {_ms(r.delay_p99_ms)} is {within} the bound"
        )
    print(
        "delivery delay (reading timestamp -> seen by user code): "
        f"p50 {_ms(r.delay_p50_ms)}, p99 {_ms(r.delay_p99_ms)}, "
        f"p99.9 {_ms(r.delay_p999_ms)}, max {_ms(r.delay_max_ms)}"
    )
    closing = f"{r.close_seconds:.1f} s"
    if r.close_seconds is None:
        closing = f"over {_CLOSE_TIMEOUT:g} s (timed out)"
    print(
        f"subscribing until every client had a reading took {r.startup_seconds:.1f} s; "
        f"stopping them all after the window took {closing}"
    )
    worst = " ".join(_ms(x).removesuffix(" ms") for x in r.max_delay_ms_per_interval)
    print(f"worst delay per interval (ms): {worst}")
    rates = " ".join(f"{x / 1000:.1f}k" for x in r.rate_per_interval)
    print(f"delivered readings/s per interval: {rates}")
    print(
        f"{'t (s)':>6} {'client RSS MB':>14} {'client CPU':>10} {'sim RSS MB':>11} {'sim CPU':>8}"
    )
    for s in r.samples:
        print(
            f"{s.t:>6.0f} {sum(s.worker_rss_mb):>14.1f} {sum(s.worker_cpu):>10.0%} "
            f"{s.sim_rss_mb:>11.1f} {s.sim_cpu:>8.0%}"
        )
    if len(r.samples) >= 2:
        first, last = r.samples[0], r.samples[-1]
        client = sum(last.worker_rss_mb) - sum(first.worker_rss_mb)
        server = last.sim_rss_mb - first.sim_rss_mb
        print(f"RSS change over the window: client {client:+.1f} MB, simulator {server:+.1f} MB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=100, help="clients (default 100)")
    parser.add_argument("--entries", type=int, default=100, help="entries per client (100)")
    parser.add_argument("--period-ms", type=int, default=100, help="@p period (100: 10 Hz)")
    parser.add_argument("--duration", type=float, default=60.0, help="window, s (default 60)")
    parser.add_argument("--warmup", type=float, default=5.0, help="s before the window (5)")
    parser.add_argument("--adapter", choices=ADAPTERS, default="threaded")
    parser.add_argument("--processes", type=int, default=1, help="client processes (default 1)")
    parser.add_argument("--sample-every", type=float, default=5.0, help="s between samples (5)")
    parser.add_argument(
        "--max-age",
        type=float,
        default=DEFAULT_MAX_AGE,
        help=f"each subscription's max_age, s (default {DEFAULT_MAX_AGE:g}; 0: no bound)",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the results to FILE as JSON")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.entries < 1 or args.entries > _FAMILY:
        parser.error(f"need --clients >= 1 and 1 <= --entries <= {_FAMILY}")
    if not 1 <= args.processes <= args.clients:
        parser.error("need 1 <= --processes <= --clients")
    if args.max_age < 0:
        parser.error("need --max-age >= 0")
    if args.duration <= 0 or args.sample_every <= 0 or args.period_ms < 1 or args.warmup < 0:
        parser.error("need positive --duration, --sample-every, --period-ms; --warmup >= 0")

    info = machine()
    print_machine(info)
    result = run(args)
    print_report(result)
    load_after = print_load_after()
    if args.json:
        doc = {"machine": info, "load_average_after": load_after, "result": asdict(result)}
        write_json(args.json, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
