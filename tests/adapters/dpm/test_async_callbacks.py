"""Callback subscriptions of the async DPM backends, under asyncio and under trio.

``await backend.subscribe(drfs, callback, on_error)`` on a backend entered
with ``async with``: a task of the backend's task group hands each reading
to the callback until the subscription stops. Each test is one async
function, run by the library it is parametrized with inside a deadline of
its own (:data:`LIMIT`), so a hang fails the test instead of stalling the
suite. Servers are real, on loopback: the simulated DPM, with the
fault-injecting proxy in front where a connection must break.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

from acnet_proto.adapters.dpm._async import AsyncDPMBackend, AsyncDPMSubscription
from acnet_proto.adapters.dpm.asyncio import AsyncioDPMBackend
from acnet_proto.adapters.sim.dpm import SimServer
from acnet_proto.errors import ConnectionLost
from acnet_proto.streams.reconnect import Gap, Reconnect
from acnet_proto.types import Reading
from tests.support.faults import Fault, Proxy

pytestmark = pytest.mark.integration

T = TypeVar("T")

#: The most any one test may take: a bound for a hang, far above what a test needs.
LIMIT = 8.0
DRFS = ["M:OUTTMP@p,20"]
FAST = Reconnect(initial_backoff=0.01, max_backoff=0.05, random=lambda: 0.5)
LOGGER = "acnet_proto.adapters.dpm._async"


@dataclass(frozen=True)
class Library:
    """What a test needs of one event-loop library, beside the backend under test."""

    backend: type[AsyncDPMBackend]
    run: Callable[[Callable[[], Awaitable[Any]]], Any]
    event: Callable[[], Any]
    sleep: Callable[[float], Awaitable[None]]
    tasks: Callable[[], int]
    #: a scope to cancel what runs in it: ``async with lib.scope() as cancel: ... cancel()``
    scope: Callable[[], AbstractAsyncContextManager[Callable[[], None]]]
    #: a task group with ``start_soon(async_fn)``, for the test's own concurrent calls
    group: Callable[[], AbstractAsyncContextManager[Any]]


def _asyncio() -> Library:
    def run(main: Callable[[], Awaitable[T]]) -> T:
        async def bounded() -> T:
            async with asyncio.timeout(LIMIT):
                return await main()

        return asyncio.run(bounded())

    @contextlib.asynccontextmanager
    async def scope() -> AsyncIterator[Callable[[], None]]:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(None) as timeout:
                yield lambda: timeout.reschedule(asyncio.get_running_loop().time())

    def tasks() -> int:
        return len(asyncio.all_tasks())

    @contextlib.asynccontextmanager
    async def group() -> AsyncIterator[Any]:
        async with asyncio.TaskGroup() as tasks:

            class Starter:
                @staticmethod
                def start_soon(async_fn: Callable[[], Awaitable[Any]]) -> None:
                    tasks.create_task(async_fn())

            yield Starter

    return Library(AsyncioDPMBackend, run, asyncio.Event, asyncio.sleep, tasks, scope, group)


def _trio() -> Library:
    trio = pytest.importorskip("trio")
    from acnet_proto.adapters.dpm.trio import TrioDPMBackend

    def run(main: Callable[[], Awaitable[T]]) -> T:
        async def bounded() -> T:
            with trio.fail_after(LIMIT):
                return await main()

        return trio.run(bounded)

    def tasks() -> int:
        def count(task: Any) -> int:
            return 1 + sum(count(t) for n in task.child_nurseries for t in n.child_tasks)

        return count(trio.lowlevel.current_root_task())

    @contextlib.asynccontextmanager
    async def scope() -> AsyncIterator[Callable[[], None]]:
        with trio.CancelScope() as cancel_scope:
            yield cancel_scope.cancel

    return Library(TrioDPMBackend, run, trio.Event, trio.sleep, tasks, scope, trio.open_nursery)


@pytest.fixture(params=["asyncio", "trio"])
def lib(request: pytest.FixtureRequest) -> Library:
    return _asyncio() if request.param == "asyncio" else _trio()


@contextlib.contextmanager
def listener() -> Iterator[socket.socket]:
    """A port that takes connections (the kernel's backlog) and never answers."""
    with socket.create_server(("127.0.0.1", 0)) as listening:
        listening.setblocking(False)
        yield listening


def connections(listening: socket.socket) -> int:
    """How many clients have connected to ``listening`` so far."""
    count = 0
    with contextlib.suppress(BlockingIOError):
        while True:
            listening.accept()[0].close()
            count += 1
    return count


def first_only(fault: Fault) -> Callable[[int], list[Fault]]:
    """For a proxy: ``fault`` on its first connection, none on the next."""
    return lambda number: [fault] if number == 0 else []


async def settle(lib: Library, condition: Callable[[], bool]) -> None:
    """Wait until ``condition()`` holds (the test's deadline bounds the wait)."""
    while not condition():
        await lib.sleep(0.01)


def one_of(lib: Library, kind: str, function: Callable[..., None]) -> Callable[..., object]:
    """``function`` as it is (``kind`` "def"), or as an ``async def`` that yields first."""
    if kind == "def":
        return function

    async def awaited(*args: Any) -> None:
        await lib.sleep(0)
        function(*args)

    return awaited


KINDS = ["def", "async def"]


# ------------------------------------------------------------------------ delivery


@pytest.mark.parametrize("kind", KINDS)
def test_readings_reach_the_callback_with_the_handle(
    lib: Library, sim: SimServer, kind: str
) -> None:
    got: list[tuple[Reading | Gap, AsyncDPMSubscription]] = []

    async def main() -> AsyncDPMSubscription:
        enough = lib.event()

        def note(reading: Reading | Gap, handle: AsyncDPMSubscription) -> None:
            got.append((reading, handle))
            if len(got) == 3:
                enough.set()

        async with lib.backend(sim.host, sim.port) as backend:
            sub = await backend.subscribe(DRFS, one_of(lib, kind, note))
            await enough.wait()
            with pytest.raises(RuntimeError, match="delivers to its callback"):
                sub.readings()
            await sub.stop()
        return sub

    sub = lib.run(main)
    assert len(got) >= 3 and sub.stopped and sub.exc is None
    assert all(handle is sub for _, handle in got)
    readings = [reading for reading, _ in got]
    assert all(isinstance(r, Reading) and r.ok and r.drf == DRFS[0] for r in readings)
    stamps = [r.timestamp for r in readings]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)


def test_an_async_callback_can_stop_its_own_subscription(lib: Library, sim: SimServer) -> None:
    got: list[Reading | Gap] = []

    async def main() -> tuple[AsyncDPMSubscription, int, int]:
        async def note(reading: Reading | Gap, handle: AsyncDPMSubscription) -> None:
            got.append(reading)
            if len(got) == 3:
                await handle.stop()

        async with lib.backend(sim.host, sim.port) as backend:
            before = lib.tasks()
            sub = await backend.subscribe(DRFS, note)
            await settle(lib, lambda: sub.stopped)
            await settle(lib, lambda: lib.tasks() == before)  # the delivery task ended
            after = lib.tasks()
        return sub, before, after

    sub, before, after = lib.run(main)
    assert len(got) == 3  # nothing after the stop, though readings kept coming
    assert sub.stopped and before == after


def test_stop_ends_delivery(lib: Library, sim: SimServer) -> None:
    got: list[Reading | Gap] = []

    async def main() -> tuple[AsyncDPMSubscription, int, float]:
        async with lib.backend(sim.host, sim.port) as backend:
            before = lib.tasks()
            sub = await backend.subscribe(DRFS, lambda reading, _: got.append(reading))
            await settle(lib, lambda: len(got) >= 2)
            await sub.stop()
            delivered = len(got)
            await settle(lib, lambda: lib.tasks() == before)
            # the backend carries on: the stream's end was its own
            value = await backend.read("M:OUTTMP", timeout=2)
        return sub, delivered, value

    sub, delivered, value = lib.run(main)
    assert sub.stopped and sub.exc is None
    assert len(got) == delivered  # not one reading after stop()
    assert abs(value - 41.7) <= 0.3


@pytest.mark.parametrize("how", ["aclose", "leaving async with"])
def test_closing_the_backend_ends_delivery(lib: Library, sim: SimServer, how: str) -> None:
    got: dict[str, list[Reading | Gap]] = {"M:OUTTMP@p,20": [], "Z:ACLTS1@p,20": []}

    async def main() -> tuple[list[AsyncDPMSubscription], int, int]:
        def note(reading: Reading | Gap, _: AsyncDPMSubscription) -> None:
            got[reading.drf].append(reading)

        before = lib.tasks()
        async with lib.backend(sim.host, sim.port) as backend:
            subs = [await backend.subscribe([drf], note) for drf in got]
            await settle(lib, lambda: all(got.values()))
            if how == "aclose":
                await backend.aclose()
                await settle(lib, lambda: lib.tasks() == before)
        return subs, before, lib.tasks()  # leaving async with waited for its tasks

    subs, before, after = lib.run(main)
    assert all(sub.stopped and sub.exc is None for sub in subs)
    assert before == after


def test_a_cancelled_body_cancels_a_callback_under_way(lib: Library, sim: SimServer) -> None:
    started: list[Reading | Gap] = []
    finished: list[Reading | Gap] = []

    async def main() -> AsyncDPMSubscription:
        async def slow(reading: Reading | Gap, _: AsyncDPMSubscription) -> None:
            started.append(reading)
            await lib.sleep(60)  # beyond LIMIT: only a cancellation ends it in time
            finished.append(reading)

        async with lib.scope() as cancel, lib.backend(sim.host, sim.port) as backend:
            sub = await backend.subscribe(DRFS, slow)
            await settle(lib, lambda: bool(started))
            cancel()
            await lib.sleep(60)
        return sub

    sub = lib.run(main)
    assert len(started) == 1 and finished == [] and sub.stopped


def test_leaving_async_with_cancels_a_callback_under_way(lib: Library, sim: SimServer) -> None:
    started: list[Reading | Gap] = []
    finished: list[Reading | Gap] = []

    async def main() -> AsyncDPMSubscription:
        async def stuck(reading: Reading | Gap, _: AsyncDPMSubscription) -> None:
            started.append(reading)
            await lib.event().wait()  # never set: as a queue the body stopped draining
            finished.append(reading)

        async with lib.backend(sim.host, sim.port) as backend:
            sub = await backend.subscribe(DRFS, stuck)
            await settle(lib, lambda: bool(started))
        return sub

    sub = lib.run(main)  # within LIMIT: leaving did not wait for the callback
    assert len(started) == 1 and finished == [] and sub.stopped


def test_a_cancelled_exit_still_closes_every_connection(lib: Library, sim: SimServer) -> None:
    async def main() -> None:
        async with lib.scope() as cancel, lib.backend(proxy.host, proxy.port, 3) as backend:
            done: list[Reading] = []

            async def read() -> None:
                done.append(await backend.get("M:OUTTMP"))

            async with lib.group() as group:  # three reads at once: three pooled connections
                for _ in range(3):
                    group.start_soon(read)
            assert len(done) == 3 and proxy.open_connections() == 3
            cancel()
            await lib.sleep(60)  # the cancellation lands here, then in aclose()

    with Proxy((sim.host, sim.port)) as proxy:
        lib.run(main)
        assert proxy.settle(), "a pooled connection was left open"
        assert proxy.open_connections() == 0


def test_the_body_s_own_exception_leaves_async_with_unwrapped(lib: Library, sim: SimServer) -> None:
    async def main() -> AsyncDPMSubscription:
        with pytest.raises(LookupError) as raised:  # not an ExceptionGroup holding it
            async with lib.backend(sim.host, sim.port) as backend:
                sub = await backend.subscribe(DRFS, lambda *_: None)
                raise LookupError("the body's own")
        assert type(raised.value) is LookupError and str(raised.value) == "the body's own"
        return sub

    assert lib.run(main).stopped


# ------------------------------------------------------------------------ failures


@pytest.mark.parametrize("kind", KINDS)
def test_a_raising_callback_is_logged_and_delivery_goes_on(
    lib: Library, sim: SimServer, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[Reading | Gap] = []
    errors: list[Exception] = []

    def fail(reading: Reading | Gap, _: AsyncDPMSubscription) -> None:
        calls.append(reading)
        raise ValueError(f"a bug in the callback, call {len(calls)}")

    async def main() -> tuple[AsyncDPMSubscription, float, bool]:
        async with lib.backend(sim.host, sim.port) as backend:
            sub = await backend.subscribe(
                DRFS, one_of(lib, kind, fail), lambda exc, _: errors.append(exc)
            )
            await settle(lib, lambda: len(calls) >= 3)
            value = await backend.read("M:OUTTMP", timeout=2)
            running = not sub.stopped
            await sub.stop()
        return sub, value, running

    with caplog.at_level(logging.ERROR, logger=LOGGER):
        sub, value, running = lib.run(main)
    assert running and abs(value - 41.7) <= 0.3
    assert errors == [] and sub.exc is None  # on_error is for a dead stream, not a bad callback
    logged = [r for r in caplog.records if r.name == LOGGER]
    assert len(logged) >= 3
    for record in logged:
        assert record.getMessage() == f"a callback of the stream of {DRFS[0]} raised"
        assert record.exc_info is not None and record.exc_info[0] is ValueError


@pytest.mark.parametrize("on_error", [*KINDS, None])
def test_a_lost_stream_goes_to_on_error(
    lib: Library, on_error: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    got: list[Reading | Gap] = []
    errors: list[tuple[Exception, AsyncDPMSubscription]] = []

    async def main() -> AsyncDPMSubscription:
        def note(exc: Exception, handle: AsyncDPMSubscription) -> None:
            errors.append((exc, handle))

        with contextlib.ExitStack() as server:
            sim = server.enter_context(SimServer.in_thread())
            async with lib.backend(sim.host, sim.port) as backend:
                sub = await backend.subscribe(
                    DRFS,
                    lambda reading, _: got.append(reading),
                    None if on_error is None else one_of(lib, on_error, note),
                    reconnect=False,
                )
                await settle(lib, lambda: bool(got))
                server.close()  # the server goes away, dropping its clients
                await settle(lib, lambda: sub.stopped)
                await settle(lib, lambda: bool(errors) or on_error is None)
        return sub

    with caplog.at_level(logging.ERROR, logger=LOGGER):
        sub = lib.run(main)
    assert isinstance(sub.exc, ConnectionLost) and sub.stopped
    assert "is lost" in str(sub.exc)
    if on_error is None:
        logged = [r.getMessage() for r in caplog.records if r.name == LOGGER]
        assert logged == [f"{sub.exc} (no on_error callback was given)"]
    else:
        assert errors == [(sub.exc, sub)]


def test_a_gap_reaches_the_callback_in_its_place(lib: Library, sim: SimServer) -> None:
    items: list[Reading | Gap] = []
    errors: list[Exception] = []

    async def main() -> None:
        async with lib.backend(proxy.host, proxy.port, timeout=1) as backend:
            await backend.subscribe(
                DRFS,
                lambda item, _: items.append(item),
                lambda exc, _: errors.append(exc),
                reconnect=FAST,
            )
            await settle(lib, lambda: len(items) >= 6)

    # the first connection breaks mid-frame after the list started and two readings came
    with Proxy((sim.host, sim.port), first_only(Fault("close-mid", at=6))) as proxy:
        lib.run(main)
    opened, closed = [item for item in items if isinstance(item, Gap)]
    # the outage is told as it begins, and again when the list runs
    assert items.index(opened) == 2 and items.index(closed) == 3
    assert opened.open and not closed.open and opened.since == closed.since
    assert list(closed.drfs) == DRFS and closed.attempts == 1
    assert errors == [] and len(proxy.connections) == 2


def test_stop_cuts_a_reconnection_pause_short(lib: Library, sim: SimServer) -> None:
    patient = Reconnect(initial_backoff=30.0, max_backoff=30.0, jitter=0.0)  # beyond LIMIT

    async def main() -> tuple[AsyncDPMSubscription, bool]:
        async with lib.backend(proxy.host, proxy.port, timeout=1) as backend:
            before = lib.tasks()
            sub = await backend.subscribe(DRFS, lambda *_: None, reconnect=patient)
            await settle(lib, lambda: proxy.connections[0].ended.is_set())
            await settle(lib, lambda: sub._link is None)  # the delivery task saw it go
            pausing = not sub.stopped
            await sub.stop()
            await settle(lib, lambda: lib.tasks() == before)  # not 30 s later
        return sub, pausing

    with Proxy((sim.host, sim.port), first_only(Fault("close", at=5))) as proxy:
        sub, pausing = lib.run(main)
    assert pausing and sub.stopped and sub.exc is None
    assert len(proxy.connections) == 1


def test_stop_cuts_a_reconnection_under_way_short(lib: Library, sim: SimServer) -> None:
    def faults(number: int) -> list[Fault]:
        if number == 0:  # the first connection breaks once the list has started
            return [Fault("close", at=5)]
        return [Fault("stall", at=0)]  # the next is accepted, then never answered

    async def main() -> AsyncDPMSubscription:
        # a connection attempt may take 60 s, far beyond LIMIT: only stop() ends it in time
        async with lib.backend(proxy.host, proxy.port, timeout=60) as backend:
            sub = await backend.subscribe(DRFS, reconnect=FAST)

            async def consume() -> None:  # it reconnects, inside readings()
                async for _ in sub.readings():
                    pass

            async with lib.group() as group:
                group.start_soon(consume)
                await settle(lib, lambda: len(proxy.connections) == 2)
                await sub.stop()  # from another task than the one connecting
            # the group waited for consume(): the connection attempt is over
        return sub

    with Proxy((sim.host, sim.port), faults) as proxy:
        sub = lib.run(main)
    assert sub.stopped and sub.exc is None
    assert proxy.settle(), "the stalled connection was left open"


# ------------------------------------------------------------------------ refused up front


def test_a_callback_subscription_needs_async_with(lib: Library) -> None:
    async def main() -> None:
        backend = lib.backend(host, port)
        try:
            with pytest.raises(RuntimeError, match="async with"):
                await backend.subscribe(DRFS, lambda *_: None)
        finally:
            await backend.aclose()

    with listener() as listening:
        host, port = listening.getsockname()[:2]
        lib.run(main)
        assert connections(listening) == 0


def _one_argument(reading: Reading) -> None: ...


@pytest.mark.parametrize(
    ("callback", "on_error", "words"),
    [
        (42, None, "callback must be callable, got int"),
        (_one_argument, None, "callback must accept two arguments"),
        (lambda r, h: None, "log it", "on_error must be callable, got str"),
        (lambda r, h: None, lambda: None, "on_error must accept two arguments"),
    ],
    ids=["not-callable", "one-argument", "on_error-not-callable", "on_error-no-arguments"],
)
def test_a_bad_callback_is_a_type_error_before_any_io(
    lib: Library, callback: object, on_error: object, words: str
) -> None:
    async def main() -> None:
        async with lib.backend(host, port) as backend:
            with pytest.raises(TypeError, match=words):
                await backend.subscribe(DRFS, callback, on_error)  # type: ignore[arg-type]

    with listener() as listening:
        host, port = listening.getsockname()[:2]
        lib.run(main)
        assert connections(listening) == 0
