from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from tests.support.servers import ServerUnavailable, skip_or_fail
from tests.support.servers.kdc import KDC, start_kdc
from tests.support.servers.rabbitmq import RabbitMQ, start_rabbitmq

# Speed is measured in benchmarks/, never in tests: no per-example deadline,
# which on a loaded 2-core machine would fail correct code at random.
settings.register_profile("acnet", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("acnet")


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
