"""Holding up under faults: every DPM adapter, through the fault-injecting proxy, on the sim.

The proxy (tests/support/faults) sits between the client and the simulated DPM on
loopback and breaks connections on purpose: closes at frame boundaries and
mid-frame, delays, drops (heartbeats among them), stalls, duplicates, flips
bytes, injects unknown message ids, garbage and lying length prefixes, drips
one byte at a time. What must hold, on every adapter through the shared
facade (tests/support/clients.py):

- a read either gives its readings or raises :class:`ReadError` carrying
  one reading per DRF (those that arrived, error readings for the rest),
  and never outlives its deadline by more than a bounded hand-over;
- a subscription notices a dead connection (closed, broken, or silent past
  the heartbeat rule), connects again, adds its entries again and hands
  over a :class:`Gap`; with ``reconnect=False`` or out of attempts it ends
  with :class:`ConnectionLost`;
- the pool drops a broken connection;
- a setting is never sent twice, whatever becomes of its ApplySettings
  (real Kerberos: the session KDC);
- a thousand random faults leak no socket, thread or task;
- the simulator survives a misbehaving client without the others noticing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence

import pytest

from acnet_proto.adapters.dpm.threaded import DispatchMode, DPMBackend
from acnet_proto.adapters.sim.dpm import SimServer
from acnet_proto.errors import ConnectionLost, ProtocolError, ReadError, SettingOutcomeUnknown
from acnet_proto.sim import SettingsPolicy
from acnet_proto.streams.reconnect import SILENT, Gap, Reconnect
from acnet_proto.types import Reading
from tests.support.clients import ADAPTERS, WRITERS, Client
from tests.support.faults import Fault, Proxy
from tests.support.servers.kdc import KDC

pytestmark = pytest.mark.integration

DRFS = ["M:OUTTMP", "Z:ACLTST", "Z:NOTFND"]
# What the sim sends for a read of DRFS, frame by frame: OpenList, three
# AddToList replies, DeviceInfo for the two that exist, StartList, two
# readings (Z:NOTFND is settled by its AddToList reply). A client that
# misses any of the last ones cannot finish the read.
READ_FRAMES = 9
# The client's frames for it: three AddToList, StartList (then StopList, ClearList).
READ_REQUESTS = 4
# A deadline's hand-over: the error is built and raised after the deadline
# passes; this bounds that, so a hang fails the test instead of stalling it.
HAND_OVER = 2.0
FAST = Reconnect(initial_backoff=0.01, max_backoff=0.05, random=lambda: 0.5)
HEARTBEAT = 0.1  # the sim's and the clients' heartbeat period where silence is tested
TYPED = (ReadError, ConnectionLost, OSError, ProtocolError)


@pytest.fixture(params=list(ADAPTERS))
def adapter(request: pytest.FixtureRequest) -> str:
    return request.param


@contextlib.contextmanager
def through(
    sim: SimServer,
    adapter: str,
    faults: Sequence[Sequence[Fault]] | Callable[[int], Sequence[Fault]],
    timeout: float = 1.0,
    heartbeat_period: float | None = None,
) -> Iterator[tuple[Proxy, Client]]:
    """A proxy with ``faults`` in front of ``sim``, and a client of ``adapter`` behind it."""
    with Proxy((sim.host, sim.port), faults) as proxy:
        open_client = ADAPTERS[adapter]
        client = open_client(
            proxy.host, proxy.port, timeout=timeout, heartbeat_period=heartbeat_period
        )
        try:
            yield proxy, client
        finally:
            client.close()


def only_first(*faults: Fault) -> Callable[[int], Sequence[Fault]]:
    """``faults`` on the first connection; the ones after it are left alone."""
    return lambda number: faults if number == 0 else ()


def read(client: Client, timeout: float) -> tuple[list[Reading], ReadError | None, float]:
    """get_many(DRFS): (readings, the ReadError if it failed, seconds it took)."""
    start = time.monotonic()
    try:
        readings, error = client.get_many(DRFS, timeout=timeout), None
    except ReadError as exc:
        readings, error = exc.readings, exc
    return readings, error, time.monotonic() - start


def check_readings(readings: list[Reading], failed: bool) -> None:
    """One reading per DRF in input order: a value, the device's own error, or what the
    failure left (timed out, disconnected)."""
    assert [r.drf for r in readings] == DRFS
    *devices, missing = readings
    assert missing.status.name == "DPM_PEND" or (
        failed and missing.status.name in ("ACNET_REQTMO", "ACNET_DISCONNECTED")
    )
    for reading in devices:
        if not reading.ok:
            assert failed and reading.status.name in ("ACNET_REQTMO", "ACNET_DISCONNECTED")


# ------------------------------------------------------------------------------ reads

# kind -> the frames it is put on: every boundary for the cheap ones; timeouts are dear
SERVER_FAULTS = {
    "close": range(READ_FRAMES),
    "close-mid": range(READ_FRAMES),
    "flip": range(READ_FRAMES),
    "unknown": range(READ_FRAMES),
    "lie": range(READ_FRAMES),
    "garbage": range(READ_FRAMES),
    "duplicate": range(READ_FRAMES),
    "drip": (0, 4, 8),
    "drop": (8,),
    "stall": (6,),
    "delay": (3,),
}
# the kinds that break any frame they touch: a read that meets one must fail
BREAKING = {"close", "close-mid", "flip", "unknown", "lie", "garbage"}


@pytest.mark.parametrize("kind", list(SERVER_FAULTS))
def test_a_read_under_a_server_side_fault_gives_readings_or_a_read_error(
    adapter: str, sim: SimServer, kind: str
) -> None:
    # a breaking fault must fail the read at once: a long deadline shows it did not wait
    # (and keeps a loaded machine from timing out first); the others wait out a short one
    timeout = 5.0 if kind in BREAKING else 0.15
    for at in SERVER_FAULTS[kind]:
        fault = Fault(kind, at=at, seconds=0.3 if kind == "delay" else 0.0, position=at)
        with through(sim, adapter, only_first(fault)) as (proxy, client):
            readings, error, took = read(client, timeout)
        assert proxy.actions, f"the {kind} fault at frame {at} never came into play"
        check_readings(readings, failed=error is not None)
        assert took < timeout + HAND_OVER
        if kind in BREAKING:
            assert error is not None, f"a read survived {kind} at frame {at}"
            assert error.__cause__ is not None  # the transport failure is chained
        if kind == "drip":
            assert error is None  # slow is not broken
        if kind in ("delay", "drop", "stall") and error is not None:
            assert "timed out" in str(error)
        if error is not None and kind in BREAKING | {"duplicate"}:
            # a broken connection fails at once, not at the deadline
            assert {r.status.name for r in readings} - {None} <= {
                "ACNET_DISCONNECTED",
                "DPM_PEND",
            }


@pytest.mark.parametrize("kind", sorted(BREAKING))
def test_a_read_under_a_client_side_fault_is_a_read_error(
    adapter: str, sim: SimServer, kind: str
) -> None:
    # the sim drops a client whose bytes break the protocol; the client hears a close
    for at in range(READ_REQUESTS):
        fault = Fault(kind, at=at, direction="c2s", position=at)
        with through(sim, adapter, only_first(fault)) as (proxy, client):
            readings, error, took = read(client, timeout=1.0)
        assert proxy.actions
        assert error is not None
        check_readings(readings, failed=True)
        assert took < 1.0 + HAND_OVER


def test_a_slow_server_gives_the_readings_that_arrived_by_the_deadline(
    adapter: str, sim: SimServer
) -> None:
    # every frame from the first reading on comes 0.2 s late: the deadline falls between
    slow = Fault("delay", at=7, times=None, seconds=0.2)
    with through(sim, adapter, only_first(slow)) as (_, client):
        readings, error, took = read(client, timeout=0.3)
    assert error is not None and "timed out" in str(error)
    check_readings(readings, failed=True)
    statuses = [r.status.name if not r.ok else "ok" for r in readings]
    assert statuses == ["ok", "ACNET_REQTMO", "DPM_PEND"]
    assert readings[0].units == "DegF"  # the metadata that came is kept
    assert took < 0.3 + HAND_OVER


# ------------------------------------------------------------------------- the pool


@pytest.mark.parametrize("kind", ["close", "flip"])
def test_the_pool_drops_a_broken_connection(adapter: str, sim: SimServer, kind: str) -> None:
    # the first connection breaks at the second read's first reply
    fault = Fault(kind, at=1, match="AddToListReply")
    with through(sim, adapter, only_first(fault)) as (proxy, client):
        first = client.get("M:OUTTMP", timeout=2)
        try:
            second: Reading | None = client.get("M:OUTTMP", timeout=2)
        except ReadError:  # the sync client fails the read, then connects again
            assert adapter == "sync"
            second = None
        third = client.get("M:OUTTMP", timeout=2)
        assert proxy.settle(0) is False  # the new connection is kept, not closed
    assert first.ok and third.ok and (second is None or second.ok)
    assert proxy.actions and proxy.actions[0].connection == 0
    broken, replacement = proxy.connections
    assert broken.ended.is_set()
    starts = replacement.names("c2s").count("StartListRequest")
    assert starts == (1 if second is None else 2)  # every later read on the new one


# -------------------------------------------------------------------- subscriptions


def without_open_gaps(items: list[Reading | Gap]) -> list[Reading | Gap]:
    """``items`` less the open gaps, each checked to come just before its closed gap (or
    last: the stream stopped while reconnecting)."""
    out: list[Reading | Gap] = []
    for index, item in enumerate(items):
        if isinstance(item, Gap) and item.open:
            after = items[index + 1 :]
            assert not after or (isinstance(after[0], Gap) and after[0].since == item.since)
            continue
        out.append(item)
    return out


def gaps_and_readings(items: list[Reading | Gap]) -> tuple[list[Gap], list[Reading]]:
    """The closed gaps and the readings of ``items``."""
    items = without_open_gaps(items)
    gaps = [item for item in items if isinstance(item, Gap)]
    return gaps, [item for item in items if not isinstance(item, Gap)]


@pytest.mark.parametrize(
    "fault",
    [
        Fault("close", at=8),
        Fault("close-mid", at=8),
        Fault("flip", at=8),
        Fault("unknown", at=8),
        Fault("lie", at=8),
        Fault("garbage", at=8),
        Fault("close", at=1, direction="c2s"),
    ],
    ids=lambda f: f"{f.kind}-{f.direction}",
)
def test_a_broken_stream_reconnects_and_marks_the_gap(
    adapter: str, sim: SimServer, fault: Fault
) -> None:
    drfs = ["M:OUTTMP@p,20", "Z:ACLTST@p,20"]
    with through(sim, adapter, only_first(fault)) as (proxy, client):
        items = without_open_gaps(client.stream(drfs, count=7, timeout=3, reconnect=FAST))
    gaps, readings = gaps_and_readings(items)
    assert len(gaps) == 1 and len(items) == 6
    [gap] = gaps
    assert gap.drfs == tuple(drfs) and gap.attempts == 1 and gap.since <= gap.until
    assert all(r.ok and r.drf in drfs for r in readings)
    before, after = items[: items.index(gap)], items[items.index(gap) + 1 :]
    assert after, "no reading came after the reconnection"
    assert all(r.timestamp <= gap.since for r in before)
    assert all(r.timestamp >= gap.until for r in after)
    # the second connection added the entries again and started the list
    old, new = proxy.connections
    assert new.names("c2s")[:3] == ["AddToListRequest", "AddToListRequest", "StartListRequest"]
    assert old.ended.is_set()


@pytest.fixture(scope="module")
def fast_sim(start_sim: Callable[..., SimServer]) -> SimServer:
    """A simulator sending heartbeats every HEARTBEAT s: silence is spotted in 3 of them."""
    return start_sim(heartbeat_period=HEARTBEAT)


def test_stalled_heartbeats_are_a_dead_connection(adapter: str, fast_sim: SimServer) -> None:
    # a list with nothing to send for a minute: only heartbeats say the server lives
    quiet = Fault("drop", match="ListStatusReply", times=None)
    with through(fast_sim, adapter, only_first(quiet), heartbeat_period=HEARTBEAT) as (
        proxy,
        client,
    ):
        opened, gap = client.stream(["M:OUTTMP@p,60000"], count=2, timeout=5, reconnect=FAST)
    assert isinstance(opened, Gap) and opened.open and opened.cause == SILENT
    assert isinstance(gap, Gap) and not gap.open and gap.cause == SILENT
    assert proxy.actions and all(a.name == "ListStatusReply" for a in proxy.actions)
    assert len(proxy.connections) == 2


def test_a_stalled_server_is_a_dead_connection(adapter: str, fast_sim: SimServer) -> None:
    # after two readings nothing more comes, heartbeats included, nor a close
    stall = Fault("stall", at=2, match="ScalarReply")
    with through(fast_sim, adapter, only_first(stall), heartbeat_period=HEARTBEAT) as (_, client):
        items = client.stream(["M:OUTTMP@p,40"], count=6, timeout=5, reconnect=FAST)
    items = without_open_gaps(items)
    gaps, readings = gaps_and_readings(items)
    assert [g.cause for g in gaps] == [SILENT] and len(readings) == 4
    assert items.index(gaps[0]) == 2


def test_without_reconnection_a_broken_stream_is_connection_lost(
    adapter: str, sim: SimServer
) -> None:
    with (
        through(sim, adapter, only_first(Fault("close", at=7))) as (proxy, client),
        pytest.raises(ConnectionLost, match="M:OUTTMP@p,40 is lost") as raised,
    ):
        client.stream(["M:OUTTMP@p,40"], count=10, timeout=3, reconnect=False)
    assert "reconnection" not in str(raised.value)
    assert len(proxy.connections) == 1


def test_a_stream_that_cannot_reconnect_is_connection_lost_after_its_retries(
    adapter: str, sim: SimServer
) -> None:
    # the first connection breaks; every later one is closed before its list id
    def faults(number: int) -> list[Fault]:
        return [Fault("close", at=7 if number == 0 else 0)]

    policy = Reconnect(max_retries=3, initial_backoff=0.01, max_backoff=0.02)
    with (
        through(sim, adapter, faults) as (proxy, client),
        pytest.raises(ConnectionLost, match="gave up after 3 reconnection attempt") as raised,
    ):
        client.stream(["M:OUTTMP@p,40"], count=10, timeout=3, reconnect=policy)
    assert raised.value.__cause__ is not None
    assert len(proxy.connections) == 1 + 3


@pytest.mark.parametrize("mode", list(DispatchMode))
def test_a_threaded_callback_gets_the_gap_and_no_error(sim: SimServer, mode: DispatchMode) -> None:
    items: list[Reading | Gap] = []
    errors: list[Exception] = []
    with (
        Proxy((sim.host, sim.port), only_first(Fault("close-mid", at=6))) as proxy,
        DPMBackend(proxy.host, proxy.port, timeout=1) as backend,
    ):
        backend.subscribe(
            ["M:OUTTMP@p,20"],
            callback=lambda item, _: items.append(item),
            on_error=lambda exc, _: errors.append(exc),
            dispatch_mode=mode,
            reconnect=FAST,
        )
        settle_until(lambda: len(items) >= 7)
    gaps, readings = gaps_and_readings(items)
    closed = without_open_gaps(items)
    assert len(gaps) == 1 and closed.index(gaps[0]) == 2 and len(readings) >= 5
    opened = items[2]  # the outage, told as it began
    assert isinstance(opened, Gap) and opened.open
    assert errors == [] and len(proxy.connections) == 2


def test_stop_cuts_a_reconnection_pause_short(sim: SimServer) -> None:
    patient = Reconnect(initial_backoff=30.0, max_backoff=30.0, jitter=0.0)
    with (
        Proxy((sim.host, sim.port), only_first(Fault("close", at=5))) as proxy,
        DPMBackend(proxy.host, proxy.port, timeout=1) as backend,
    ):
        before = threading.active_count()
        stream = backend.subscribe(["M:OUTTMP@p,20"], reconnect=patient)
        settle_until(lambda: proxy.connections[0].ended.is_set())
        assert not stream.stopped  # pausing before its next attempt, not dead
        start = time.monotonic()
        stream.stop()
        assert time.monotonic() - start < HAND_OVER  # not the 30 s pause
        assert proxy.settle(5)  # the proxy's own threads for the connection are gone too
        assert threading.active_count() == before and stream.exc is None
    assert len(proxy.connections) == 1


# ------------------------------------------------------------------- no leaks, ever


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def random_fault(rng: random.Random) -> Fault:
    """A fault that costs little: most break at once; the slow kinds are rare and short."""
    kind = rng.choices(
        [
            "close",
            "close-mid",
            "flip",
            "unknown",
            "lie",
            "garbage",
            "duplicate",
            "drip",
            "drop",
            "stall",
            "delay",
        ],
        weights=[8, 5, 5, 4, 4, 4, 4, 2, 1, 1, 1],
    )[0]
    direction = rng.choice(["s2c", "s2c", "c2s"])
    at = rng.randrange(8 if direction == "s2c" else 4)
    seconds = 0.002 if kind == "delay" else 0.0  # a drip is a write per byte, no pause
    return Fault(kind, at=at, direction=direction, position=rng.randrange(32), seconds=seconds)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts /proc/self/fd")
def test_a_thousand_faults_leak_no_socket_thread_or_task(adapter: str, sim: SimServer) -> None:
    target = 1000 // len(ADAPTERS)  # a thousand over the four adapters
    rng = random.Random(f"faults-{adapter}")
    retry = Reconnect(max_retries=2, initial_backoff=0.002, max_backoff=0.01, random=rng.random)
    # two faults a connection: whichever its conversation reaches first bites
    with Proxy((sim.host, sim.port), lambda _: [random_fault(rng), random_fault(rng)]) as proxy:
        fds, threads = open_fds(), threading.active_count()
        client = ADAPTERS[adapter](proxy.host, proxy.port, timeout=0.3)
        try:
            tasks = client.tasks()
            outcomes: dict[str, int] = {}
            while proxy.injected < target:
                start = time.monotonic()
                try:
                    if rng.random() < 0.8:
                        client.get_many(DRFS[:2], timeout=0.05)
                    else:
                        client.stream(["M:OUTTMP@p,5"], count=2, timeout=0.05, reconnect=retry)
                    outcome = "ok"
                except TYPED as exc:
                    outcome = type(exc).__name__
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
                assert time.monotonic() - start < 0.3 + HAND_OVER, f"{outcome} took too long"
            assert client.tasks() == tasks
        finally:
            client.close()
        assert proxy.settle(5)
        # no more than before: sockets that earlier tests left closing may close meanwhile
        settle_until(lambda: open_fds() <= fds and threading.active_count() <= threads)
        assert open_fds() <= fds
        assert threading.active_count() <= threads
    assert outcomes.get("ok") and len(outcomes) > 2, outcomes  # the faults did bite, not always


def settle_until(condition: Callable[[], bool], limit: float = 5.0) -> None:
    """Give closing sockets (the sim closes its side on its own loop) a bounded moment."""
    deadline = time.monotonic() + limit
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


# ------------------------------------------------- the simulator and a misbehaving client


class Watcher:
    """A well-behaved subscriber straight to the sim, counting what it receives."""

    def __init__(self, sim: SimServer) -> None:
        self.backend = DPMBackend(sim.host, sim.port, timeout=2)
        self.readings: list[Reading | Gap] = []
        self.errors: list[Exception] = []
        self.sub = self.backend.subscribe(
            ["M:OUTTMP@p,20"],
            callback=lambda reading, _: self.readings.append(reading),
            on_error=lambda exc, _: self.errors.append(exc),
            reconnect=False,
        )

    def wait_for_more(self, limit: float = 5.0) -> None:
        seen = len(self.readings)
        settle_until(lambda: len(self.readings) >= seen + 3, limit)
        assert len(self.readings) >= seen + 3, "the well-behaved client stopped hearing the sim"

    def close(self) -> None:
        self.backend.close()


@pytest.mark.parametrize(
    "faults",
    [
        pytest.param([Fault("lie", direction="c2s")], id="lying-length-beyond-the-limit"),
        pytest.param([Fault("lie", length=48 << 20, direction="c2s")], id="lying-length-short"),
        pytest.param([Fault("garbage", direction="c2s")], id="garbage"),
        pytest.param([Fault("unknown", at=1, direction="c2s")], id="unknown-message-id"),
        pytest.param([Fault("close-mid", at=1, direction="c2s")], id="gone-mid-frame"),
        pytest.param(
            [
                Fault("garbage", direction="c2s", data=(40 << 20).to_bytes(4, "big")),
                Fault("drip", direction="c2s"),
            ],
            id="slow-drip-of-a-huge-frame",
        ),
    ],
)
def test_the_sim_survives_a_misbehaving_client(
    sim: SimServer, faults: list[Fault], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="acnet_proto.adapters.sim.dpm")
    watcher = Watcher(sim)
    try:
        watcher.wait_for_more()
        with through(sim, "threaded", only_first(*faults)) as (proxy, client):
            outcome: list[ReadError | None] = []
            misbehaving = threading.Thread(target=lambda: outcome.append(read(client, 1.0)[1]))
            misbehaving.start()
            watcher.wait_for_more()  # while the misbehaving client is at it
            misbehaving.join()
            assert outcome[0] is not None and proxy.actions
        watcher.wait_for_more()  # and after it left
        with through(sim, "threaded", []) as (_, client):  # a newcomer is served
            assert client.get("M:OUTTMP", timeout=2).ok
        assert watcher.errors == [] and not any(isinstance(r, Gap) for r in watcher.readings)
    finally:
        watcher.close()
    noted = [r.getMessage() for r in caplog.records]
    assert any("dropped client" in m or "lost client" in m for m in noted), noted
    assert not any("internal error" in m for m in noted)


# ---------------------------------------------------------------------- settings


SETTINGS_FAULTS = [
    Fault(kind, match="ApplySettingsReply", seconds=0.05 if kind == "delay" else 0.0)
    for kind in (
        "close",
        "close-mid",
        "flip",
        "unknown",
        "lie",
        "garbage",
        "duplicate",
        "drop",
        "stall",
        "delay",
        "drip",
    )
] + [
    Fault("duplicate", times=None),  # every frame the server sends, twice
    Fault("close", match="ApplySettingsRequest", direction="c2s"),  # withheld: never applied
]


@pytest.fixture(scope="module")
def kerberos_sim(start_sim: Callable[..., SimServer], kdc: KDC) -> SimServer:
    """The sim taking settings: ``operator`` (the KDC's default ticket) may set ``Z:*``."""
    policy = SettingsPolicy.from_toml(
        """
[roles.testing]
allow = ["Z:*"]

[principals."operator@FNAL.GOV"]
roles = ["testing"]
"""
    )
    return start_sim(keytab=kdc.keytab, policy=policy)


@pytest.mark.parametrize("writer", WRITERS)
def test_a_setting_is_never_replayed_under_faults(writer: str, kerberos_sim: SimServer) -> None:
    pytest.importorskip("gssapi")
    from acnet_proto.adapters.kerberos import KerberosAuth

    auth = KerberosAuth()
    for number, fault in enumerate(SETTINGS_FAULTS):
        with Proxy((kerberos_sim.host, kerberos_sim.port), only_first(fault)) as proxy:
            client = ADAPTERS[writer](proxy.host, proxy.port, auth=auth, role="testing")
            try:
                # the faulted setting, then two more: the broken connection must be dropped
                # (a stale duplicate may fail the next, never make it send twice)
                values = [100.0 + number, 200.0 + number, 300.0 + number]
                outcomes = [apply_once(client, proxy, value) for value in values]
                assert outcomes[-1] == "ok", (fault, outcomes)
                assert client.read("Z:ACLTST.SETTING", timeout=2) == values[-1]
            finally:
                client.close()
        assert proxy.actions, f"{fault} never came into play"
        if fault.kind in ("delay", "drip"):
            assert outcomes[0] == "ok"
        elif fault.times == 1:
            # lost, withheld or unreadable after it left: nobody can tell the client
            assert outcomes[0] == "unknown", (fault, outcomes)


def apply_once(client: Client, proxy: Proxy, value: float) -> str:
    """One setting: "ok", "unknown" (SettingOutcomeUnknown) or "failed" (any other typed
    error); whatever it is, the client sent at most one ApplySettings for it."""
    sent = proxy.count("ApplySettingsRequest")
    try:
        result = client.write("Z:ACLTST", value, timeout=0.5)
        outcome = "ok" if result.ok else "failed"
    except SettingOutcomeUnknown as exc:
        assert exc.drfs == ["Z:ACLTST"]
        outcome = "unknown"
    except (*TYPED, TimeoutError):
        outcome = "failed"
    applies = proxy.count("ApplySettingsRequest") - sent
    assert applies <= 1, f"the setting of {value} was sent {applies} times"
    if outcome in ("ok", "unknown"):
        assert applies == 1
    return outcome


def test_a_dripped_request_is_served(sim: SimServer) -> None:
    # one byte per write, every frame of the request: slow, not wrong
    drip = Fault("drip", direction="c2s", times=None)
    with through(sim, "threaded", only_first(drip)) as (proxy, client):
        readings, error, _ = read(client, timeout=5)
    assert error is None and len(proxy.actions) >= READ_REQUESTS
    check_readings(readings, failed=False)


def test_the_proxy_records_what_each_side_sent(sim: SimServer) -> None:
    with through(sim, "threaded", [[Fault("duplicate", at=7)]]) as (proxy, client):
        client.get_many(DRFS, timeout=2)
    [connection] = proxy.connections
    assert connection.names("c2s")[:READ_REQUESTS] == ["AddToListRequest"] * 3 + [
        "StartListRequest"
    ]
    assert connection.names("s2c")[:READ_FRAMES] == [
        "OpenListReply",
        *["AddToListReply"] * 3,
        *["DeviceInfoReply"] * 2,
        "StartListReply",
        *["ScalarReply"] * 2,
    ]
    assert [(a.direction, a.frame, a.name, a.kind) for a in proxy.actions] == [
        ("s2c", 7, "ScalarReply", "duplicate")
    ]


def test_a_fault_of_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown fault kind 'explode'"):
        Fault("explode")
    with pytest.raises(ValueError, match="direction"):
        Fault("close", direction="sideways")
