import contextlib
import signal
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from acnet_proto.adapters.sim.dpm import SimServer
from tests.support.servers import ServerUnavailable, skip_or_fail
from tests.support.servers.kdc import KDC, start_kdc
from tests.support.servers.rabbitmq import RabbitMQ, start_rabbitmq

# Speed is measured in benchmarks/, never in tests: no per-example deadline,
# which on a loaded 2-core machine would fail correct code at random.
settings.register_profile("acnet", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("acnet")

# A non-interactive shell starts a background job with SIGINT ignored, and a child
# process inherits that: the CLIs these tests stop with Ctrl-C would never hear it.
# A Python handler here is reset to the default in every child the tests start.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def kdc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KDC]:
    """A running MIT KDC for FNAL.GOV; libkrb5 in this process is pointed at it."""
    try:
        server = start_kdc(tmp_path_factory.mktemp("kdc"))
    except ServerUnavailable as exc:
        skip_or_fail(exc)
    try:
        with pytest.MonkeyPatch.context() as mp:
            for name, value in server.env_vars().items():
                mp.setenv(name, value)
            yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def rabbitmq() -> Iterator[RabbitMQ]:
    """A private RabbitMQ node on loopback; guest/guest is allowed."""
    pytest.importorskip("pika")
    try:
        server = start_rabbitmq()
    except ServerUnavailable as exc:
        skip_or_fail(exc)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def start_sim() -> Iterator[Callable[..., SimServer]]:
    """Starts simulated DPMs (``SimServer.in_thread``'s arguments: a model, ``keytab=``,
    ``policy=``, ``heartbeat_period=``...) that run until the test module is done."""
    with contextlib.ExitStack() as running:

        def start(*args: Any, **options: Any) -> SimServer:
            return running.enter_context(SimServer.in_thread(*args, **options))

        yield start


@pytest.fixture(scope="module")
def sim(start_sim: Callable[..., SimServer]) -> SimServer:
    """The simulated DPM with the packaged device model, one per test module (a module that
    needs another kind defines its own ``sim`` from :func:`start_sim`)."""
    return start_sim()
