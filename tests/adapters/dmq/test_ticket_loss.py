"""A DMQ stream that must reconnect after its Kerberos ticket is gone ends, typed, at once.

DMQ signs every job's INIT with a fresh GSS context, so a stream that
reconnects needs a valid ticket again. Destroyed (``kdestroy``) while the
stream ran, the reconnection fails with :class:`AuthenticationError` saying
to ``kinit``: raised from ``readings()`` or passed to ``on_error``, after the
readings that came first, and never retried. Real RabbitMQ, real KDC; the
connection is cut by the byte relay of ``test_reconnect``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from acnet_proto.errors import AuthenticationError
from acnet_proto.streams.reconnect import Gap, Reconnect
from tests.support.servers.kdc import KDC, assert_from_gssapi
from tests.support.servers.rabbitmq import RabbitMQ

pytest.importorskip("pika")
pytest.importorskip("gssapi")

from acnet_proto.adapters.dmq import DMQBackend
from acnet_proto.adapters.kerberos import KerberosAuth
from acnet_proto.adapters.sim.dmq import DMQSimServer
from tests.adapters.dmq.test_reconnect import SERVICE, Relay

pytestmark = pytest.mark.integration

T = 5.0  # generous per-wait timeout: a failure must fail, never hang
DRF = "M:OUTTMP@p,100"
# quick, and with room for many attempts: a retried refusal would show as more connections
QUICK = Reconnect(initial_backoff=0.05, max_backoff=0.1, max_retries=50)
#: what the error says once the ticket is gone: no ticket, and to kinit
NO_TICKET = ("no Kerberos ticket for operator@FNAL.GOV", "kinit operator@FNAL.GOV")


@pytest.fixture
def ccache(kdc: KDC) -> Path:
    return kdc.kinit("operator")


@pytest.fixture
def relay(rabbitmq: RabbitMQ, kdc: KDC) -> Iterator[Relay]:
    """The relay to the broker, with the simulated DMQ serving behind it."""
    dmq = DMQSimServer(host=rabbitmq.host, port=rabbitmq.port, keytab=kdc.keytab, service=SERVICE)
    relay = Relay((rabbitmq.host, rabbitmq.port))
    with dmq:
        yield relay
        relay.refuse()


@pytest.fixture
def backend(relay: Relay, ccache: Path) -> Iterator[DMQBackend]:
    auth = KerberosAuth(ccache=ccache)
    with DMQBackend("127.0.0.1", relay.port, auth=auth, service=SERVICE, timeout=T) as backend:
        yield backend


def test_readings_raise_authentication_error_when_the_stream_cannot_come_back(
    kdc: KDC, backend: DMQBackend, relay: Relay, ccache: Path
) -> None:
    seen: list[Any] = []
    stream = backend.subscribe([DRF], reconnect=QUICK)
    with stream, pytest.raises(AuthenticationError) as caught:
        for reading, _ in stream.readings(timeout=T):
            seen.append(reading)
            if len(seen) == 3:
                kdc.kdestroy(ccache)
                relay.cut()
    assert_from_gssapi(caught.value, *NO_TICKET)
    assert stream.exc is caught.value
    readings = [item for item in seen if not isinstance(item, Gap)]  # a gap may open the outage
    assert len(readings) >= 3 and all(r.ok for r in readings)
    assert relay.accepted == 1  # refused before connecting again: no retry


def test_on_error_hears_of_the_lost_ticket(
    kdc: KDC, backend: DMQBackend, relay: Relay, ccache: Path
) -> None:
    errors: list[tuple[BaseException, Any]] = []
    flowing, ended = threading.Event(), threading.Event()

    def on_reading(reading: Any, handle: Any) -> None:
        flowing.set()

    def on_error(error: BaseException, handle: Any) -> None:
        errors.append((error, handle))
        ended.set()

    stream = backend.subscribe([DRF], callback=on_reading, on_error=on_error, reconnect=QUICK)
    try:
        assert flowing.wait(T)
        kdc.kdestroy(ccache)
        relay.cut()
        assert ended.wait(T), "the stream never ended"
    finally:
        stream.stop()
    [(error, handle)] = errors
    assert handle is stream
    assert_from_gssapi(error, *NO_TICKET)
    assert relay.accepted == 1
