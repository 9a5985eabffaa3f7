"""The threaded DPM backend: its pool, its streams' threads, and how it shares them.

Servers are real, on loopback: the scripted server replaying the recorded
conversations byte for byte, a listener that never answers, and the
simulated DPM. Waits poll real state with a bound; nothing asserts a speed.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from acnet_proto.adapters.dpm import threaded
from acnet_proto.adapters.dpm._blocking import _Link
from acnet_proto.adapters.dpm.threaded import DispatchMode, DPMBackend, DPMHTTPBackend
from acnet_proto.adapters.sim.dpm import SimServer
from acnet_proto.drf import DRFError
from acnet_proto.engine.transcript import load
from acnet_proto.errors import AuthenticationError, ConnectionLost, ReadError
from acnet_proto.types import Reading
from tests.support.servers.scripted import ScriptedServer
from tests.support.vectors import SHARED
from tests.support.waiting import wait_until

READ_ONE_SHOT = load(SHARED / "transcripts" / "read-one-shot.jsonl")
STREAM = load(SHARED / "transcripts" / "stream-with-heartbeat.jsonl")
STREAM_DRFS = ["M:OUTTMP@p,1000", "Z:ACLTS1[0:4]@p,1000", "Z:NOTFND@p,1000"]
# everything the server says in the recording, without the client's final StopList
STREAM_UNTIL_STOP = STREAM[:-1]
assert STREAM[-1].note == "stop"
# what the recording's server sends after the list started: 2 periods of 2 readings,
# and the per-entry error of Z:NOTFND (its AddToList was refused)
STREAMED = 5


@pytest.fixture
def backend(sim: SimServer) -> Iterator[DPMBackend]:
    with DPMBackend(sim.host, sim.port, timeout=5.0) as b:
        yield b


class Collector:
    """A callback that records what it got, on which thread, and can be made to block."""

    def __init__(self, block: bool = False) -> None:
        self.readings: list[Reading] = []
        self.errors: list[Exception] = []
        self.threads: set[str] = set()
        self.release = threading.Event()
        if not block:
            self.release.set()

    def __call__(self, reading: Reading, handle: object) -> None:
        self.threads.add(threading.current_thread().name)
        self.readings.append(reading)
        self.release.wait(10)

    def on_error(self, exc: Exception, handle: object) -> None:
        self.threads.add(threading.current_thread().name)
        self.errors.append(exc)


# ------------------------------------------------------------------------- the pool


def test_sequential_reads_share_one_pooled_connection() -> None:
    thrice = [*READ_ONE_SHOT, *READ_ONE_SHOT[2:], *READ_ONE_SHOT[2:]]
    with ScriptedServer(thrice) as server, DPMBackend(server.host, server.port) as backend:
        readings = [backend.get("M:OUTTMP", timeout=2) for _ in range(3)]
    assert server.errors == []
    assert server.completed == 1  # one connection carried all three lists
    assert readings[0].ok and readings[0] == readings[1] == readings[2]


def test_a_pooled_connection_the_server_closed_is_replaced() -> None:
    # the server hangs up after each read: the idle connection in the pool is dead
    with (
        ScriptedServer(READ_ONE_SHOT, hold_open=False) as server,
        DPMBackend(server.host, server.port) as backend,
    ):
        first = backend.get("M:OUTTMP", timeout=2)
        second = backend.get("M:OUTTMP", timeout=2)
    assert server.errors == []
    assert server.completed == 2
    assert first.ok and first == second


@pytest.fixture
def counted_links(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count the links the backend opens, and the most open at once."""
    counts = {"opened": 0, "open": 0, "most": 0}
    lock = threading.Lock()

    class CountingLink(_Link):
        def __init__(self, host: str, port: int, deadline: float) -> None:
            with lock:
                counts["opened"] += 1
                counts["open"] += 1
                counts["most"] = max(counts["most"], counts["open"])
            super().__init__(host, port, deadline)

        def close(self) -> None:
            with lock:
                counts["open"] -= 1
            super().close()

    monkeypatch.setattr(threaded, "_Link", CountingLink)
    return counts


def test_many_threads_share_the_pool_and_each_gets_its_own_answers(
    sim: SimServer, counted_links: dict[str, int]
) -> None:
    threads, rounds = 24, 8
    failures: list[str] = []
    start = threading.Barrier(threads)

    def work(worker: int) -> None:
        start.wait()
        for n in range(rounds):
            names = [f"Z:SIM{(worker * 100 + n * 3 + k) % 10000:04d}" for k in range(3)]
            try:
                readings = backend.get_many(names, timeout=10)
            except Exception as exc:
                failures.append(f"{names}: {exc!r}")
                continue
            got = [(r.drf, r.meta.name if r.meta else None, r.ok) for r in readings]
            if got != [(name, name, True) for name in names]:
                failures.append(f"asked {names}, got {got}")

    with DPMBackend(sim.host, sim.port, pool_size=4) as backend:
        pool = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join(30)
        assert not any(t.is_alive() for t in pool)
    assert failures == []
    assert 1 <= counted_links["most"] <= 4
    assert counted_links["opened"] <= 4  # made on demand, then kept
    assert counted_links["open"] == 0  # close() closed the idle ones


def test_a_busy_pool_makes_a_waiting_read_time_out() -> None:
    mute = socket.create_server(("127.0.0.1", 0))  # accepts into the backlog, never answers
    host, port = mute.getsockname()[:2]
    with mute, DPMBackend(host, port, pool_size=1) as backend:
        first_failed: list[BaseException] = []

        def hold() -> None:
            try:
                backend.get("M:OUTTMP", timeout=1.0)  # holds the only slot until its deadline
            except ReadError as exc:
                first_failed.append(exc)

        holder = threading.Thread(target=hold)
        holder.start()
        time.sleep(0.1)
        with pytest.raises(ReadError, match="busy") as caught:
            backend.get("Z:ACLTST", timeout=0.3)
        holder.join(5)
    assert [r.status.name for r in caught.value.readings] == ["ACNET_REQTMO"]
    assert len(first_failed) == 1


def test_bad_drf_raises_before_the_pool_is_touched(counted_links: dict[str, int]) -> None:
    with DPMBackend("127.0.0.1", 9) as backend:  # nothing listens on the discard port
        with pytest.raises(DRFError):
            backend.get_many(["M:OUTTMP", "M:OUT TMP"])
        with pytest.raises(DRFError):
            backend.subscribe(["M:OUTTMP@p,banana"])
    assert counted_links["opened"] == 0


def test_constructor_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="pool_size"):
        DPMBackend("localhost", pool_size=0)
    with pytest.raises(ValueError, match="port"):
        DPMBackend("localhost", port=70000)
    with pytest.raises(ValueError, match="timeout"):
        DPMBackend("localhost", timeout=-1)
    with pytest.raises(ValueError, match="host"):
        DPMBackend("")
    assert DPMHTTPBackend is DPMBackend


def test_settings_need_kerberos(backend: DPMBackend) -> None:
    with pytest.raises(AuthenticationError, match=r"pass auth=KerberosAuth\(\)"):
        backend.write("Z:ACLTST", 45.0)
    with pytest.raises(AuthenticationError, match=r"pass auth=KerberosAuth\(\)"):
        backend.write_many({"Z:ACLTST": 45.0, "Z:ACLTS1[0:1]": [1.0, 2.0]})
    with pytest.raises(DRFError):  # a setting that cannot be written is reported first
        backend.write("Z:ACLTST.DESCRIPTION", "x")


def test_a_closed_backend_refuses_work(sim: SimServer) -> None:
    backend = DPMBackend(sim.host, sim.port)
    assert backend.read("M:OUTTMP") is not None
    backend.close()
    backend.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        backend.get("M:OUTTMP")
    with pytest.raises(RuntimeError, match="closed"):
        backend.subscribe(["M:OUTTMP@p,1000"])


# ----------------------------------------------------------------------- the streams


def test_stop_sends_the_recorded_stop_list() -> None:
    with ScriptedServer(STREAM) as server, DPMBackend(server.host, server.port) as backend:
        with backend.subscribe(STREAM_DRFS) as sub:
            got = []
            for reading, _ in sub.readings(timeout=2):
                got.append(reading)
                if len(got) == STREAMED:
                    break
            assert len(got) == STREAMED
        assert sub.stopped
    assert server.errors == []
    assert server.completed == 1


def test_iterator_mode_yields_readings_with_the_handle(backend: DPMBackend) -> None:
    sub = backend.subscribe(["M:OUTTMP@p,20", "Z:ACLTST@p,20"])
    names = set()
    for reading, handle in sub.readings(timeout=5):
        assert handle is sub
        names.add(reading.name)
        if names == {"M:OUTTMP", "Z:ACLTST"}:
            break
    sub.stop()
    assert sub.stopped and sub.exc is None
    assert list(sub.readings(timeout=0)) == []
    with pytest.raises(RuntimeError, match="callback"):
        next(backend.subscribe(["M:OUTTMP@p,20"], callback=Collector()).readings())


@pytest.mark.parametrize(
    ("mode", "thread"), [(DispatchMode.WORKER, "worker"), (DispatchMode.DIRECT, "reader")]
)
def test_callbacks_run_on_the_thread_their_mode_names(
    backend: DPMBackend, mode: DispatchMode, thread: str
) -> None:
    seen = Collector()
    with backend.subscribe(["M:OUTTMP@p,20"], callback=seen, dispatch_mode=mode):
        wait_until(lambda: len(seen.readings) >= 3, "three callbacks")
    assert all(r.name == "M:OUTTMP" and r.ok for r in seen.readings)
    [name] = seen.threads
    assert name.endswith(thread)
    count = len(seen.readings)
    time.sleep(0.1)
    assert len(seen.readings) == count  # stopped means no more callbacks


def test_a_slow_worker_callback_never_stalls_the_socket(backend: DPMBackend) -> None:
    slow = Collector(block=True)
    sub = backend.subscribe(["Z:ACLTST@p,5"], callback=slow, queue_size=4)
    # the callback holds its first reading; the reader keeps reading, queues 4, drops the rest
    wait_until(lambda: sub.dropped > 0, "the reader to run past the queue")
    assert len(slow.readings) == 1
    slow.release.set()  # the queued readings follow, in order
    wait_until(lambda: len(slow.readings) >= 1 + 4, "the queued readings")
    sub.stop()
    stamps = [r.timestamp for r in slow.readings]
    assert stamps == sorted(stamps)


def test_a_slow_direct_callback_holds_the_reader(backend: DPMBackend) -> None:
    slow = Collector(block=True)
    sub = backend.subscribe(["Z:ACLTST@p,5"], callback=slow, dispatch_mode=DispatchMode.DIRECT)
    wait_until(lambda: len(slow.readings) == 1, "the first callback")
    time.sleep(0.2)  # 40 periods: nothing is queued or dropped, the reader is in the callback
    assert len(slow.readings) == 1 and sub.dropped == 0
    slow.release.set()
    sub.stop()


def test_a_full_queue_drops_new_readings_counts_them_and_warns_once(
    backend: DPMBackend, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=threaded.__name__)
    sub = backend.subscribe(["Z:ACLTST@p,5"], queue_size=3)
    wait_until(lambda: sub.dropped >= 5, "several drops")
    kept = [reading for reading, _ in sub.readings(timeout=0)]
    sub.stop()
    assert len(kept) == 3
    stamps = [r.timestamp for r in kept]
    assert stamps == sorted(stamps)  # the oldest were kept, in order
    warnings = [r for r in caplog.records if "dropping readings" in r.getMessage()]
    assert len(warnings) == 1


def test_a_callback_that_raises_is_logged_and_the_stream_goes_on(
    backend: DPMBackend, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[Reading] = []

    def flaky(reading: Reading, handle: object) -> None:
        calls.append(reading)
        if len(calls) == 1:
            raise ZeroDivisionError("a bug in the user's callback")

    with backend.subscribe(["M:OUTTMP@p,20"], callback=flaky):
        wait_until(lambda: len(calls) >= 3, "callbacks after the one that raised")
    assert any(r.exc_info and r.exc_info[0] is ZeroDivisionError for r in caplog.records)


@pytest.mark.parametrize("mode", list(DispatchMode))
def test_stop_from_inside_a_callback(backend: DPMBackend, mode: DispatchMode) -> None:
    calls: list[Reading] = []

    def once(reading: Reading, handle: threaded.DPMSubscription) -> None:
        calls.append(reading)
        handle.stop()

    sub = backend.subscribe(["M:OUTTMP@p,10"], callback=once, dispatch_mode=mode)
    wait_until(lambda: sub.stopped, "the callback to stop its stream")
    wait_until(lambda: not sub._reader.is_alive(), "the reader thread to end")
    assert len(calls) == 1


def test_callbacks_are_checked_before_connecting(backend: DPMBackend) -> None:
    with pytest.raises(TypeError, match="callback must accept two"):
        backend.subscribe(["M:OUTTMP@p,1000"], callback=lambda reading: None)
    with pytest.raises(TypeError, match="on_error must be callable"):
        backend.subscribe(["M:OUTTMP@p,1000"], on_error="print")
    with pytest.raises(TypeError, match="dispatch_mode"):
        backend.subscribe(["M:OUTTMP@p,1000"], dispatch_mode="worker")
    with pytest.raises(ValueError, match="queue_size"):
        backend.subscribe(["M:OUTTMP@p,1000"], queue_size=0)


# ------------------------------------------------- a stream that dies (reconnection off)


@pytest.mark.parametrize("mode", list(DispatchMode))
def test_on_error_gets_connection_lost_after_the_readings(mode: DispatchMode) -> None:
    # the server sends everything it recorded, then hangs up
    with (
        ScriptedServer(STREAM_UNTIL_STOP, hold_open=False) as server,
        DPMBackend(server.host, server.port) as backend,
    ):
        seen = Collector()
        sub = backend.subscribe(
            STREAM_DRFS,
            callback=seen,
            on_error=seen.on_error,
            dispatch_mode=mode,
            reconnect=False,
        )
        wait_until(lambda: seen.errors, "on_error")
        assert len(seen.readings) == STREAMED
        [error] = seen.errors
        assert isinstance(error, ConnectionLost)
        assert sub.exc is error and sub.stopped
        assert len(seen.threads) == 1  # on_error ran where the callbacks ran
    assert server.errors == []


def test_iteration_raises_connection_lost_after_the_readings() -> None:
    with (
        ScriptedServer(STREAM_UNTIL_STOP, hold_open=False) as server,
        DPMBackend(server.host, server.port) as backend,
    ):
        seen = Collector()
        sub = backend.subscribe(STREAM_DRFS, on_error=seen.on_error, reconnect=False)
        got = []
        with pytest.raises(ConnectionLost):
            for reading, _ in sub.readings(timeout=5):
                got.append(reading)
    assert len(got) == STREAMED
    assert len(seen.errors) == 1 and seen.errors[0] is sub.exc


def test_a_lost_stream_without_on_error_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with (
        ScriptedServer(STREAM_UNTIL_STOP, hold_open=False) as server,
        DPMBackend(server.host, server.port) as backend,
    ):
        sub = backend.subscribe(STREAM_DRFS, callback=Collector(), reconnect=False)
        wait_until(lambda: sub.exc is not None, "the stream to die")
        wait_until(
            lambda: any("no on_error" in r.getMessage() for r in caplog.records),
            "the error to be logged",
        )


# ------------------------------------------------------------------ threads are joined


def test_close_stops_every_stream_and_joins_its_threads(sim: SimServer) -> None:
    before = threading.active_count()
    backend = DPMBackend(sim.host, sim.port)
    assert backend.read("M:OUTTMP") is not None
    assert threading.active_count() == before  # reads run on the caller's thread
    subs = [
        backend.subscribe(["M:OUTTMP@p,50"]),  # reader
        backend.subscribe(["M:OUTTMP@p,50"], callback=Collector()),  # reader + worker
        backend.subscribe(
            ["M:OUTTMP@p,50"], callback=Collector(), dispatch_mode=DispatchMode.DIRECT
        ),  # reader
    ]
    assert threading.active_count() == before + 4
    backend.close()
    assert threading.active_count() == before
    assert all(s.stopped and s.exc is None for s in subs)


def test_stop_joins_the_streams_threads(backend: DPMBackend) -> None:
    before = threading.active_count()
    sub = backend.subscribe(["M:OUTTMP@p,50"], callback=Collector())
    assert threading.active_count() == before + 2
    sub.stop()
    sub.stop()  # idempotent
    assert threading.active_count() == before
