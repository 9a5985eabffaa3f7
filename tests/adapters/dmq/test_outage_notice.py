"""A DMQ subscription tells its user of an outage when it starts.

A real RabbitMQ and KDC, the simulated DMQ service. Two ways a stream's server dies:
the DMQ service stops (its job falls silent: noticed after ``server_silence``, the DMQ
equivalent of missed heartbeats), or the AMQP connection under the job breaks (noticed at
once). The open gap must come within that detection time, while reconnection goes on;
the closed one when the server answers the job again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from tests.adapters._watch import PATIENT, Run, Watcher, check_outage, gap, readings_after
from tests.adapters.dmq.test_reconnect import Relay
from tests.support.servers.kdc import KDC
from tests.support.servers.rabbitmq import RabbitMQ

pytest.importorskip("pika")
pytest.importorskip("gssapi")
from acnet_proto.adapters.dmq import DMQBackend
from acnet_proto.adapters.kerberos import KerberosAuth
from acnet_proto.adapters.sim.dmq import DMQSimServer

pytestmark = pytest.mark.integration

SERVICE = "daeset/bd/localhost@FNAL.GOV"
DRF = "M:OUTTMP@p,100"
SILENCE = 1.0  # the backend's server_silence: a job silent this long is gone
SLACK = 1.0  # the I/O thread's tick, and a loaded machine's scheduling


@pytest.fixture
def start_sim(rabbitmq: RabbitMQ, kdc: KDC) -> Iterator[Callable[[], DMQSimServer]]:
    started: list[DMQSimServer] = []

    def start() -> DMQSimServer:
        sim = DMQSimServer(
            host=rabbitmq.host,
            port=rabbitmq.port,
            keytab=kdc.keytab,
            service=SERVICE,
            heartbeat_period=0.2,  # its Q keeps a live job from looking silent
        )
        started.append(sim.start())
        return sim

    yield start
    for sim in started:
        sim.stop()


def _run(host: str, port: int) -> Run:
    def run(record: Callable[[object], None], stop: threading.Event) -> None:
        with DMQBackend(
            host,
            port,
            auth=KerberosAuth(),
            service=SERVICE,
            timeout=5.0,
            server_silence=SILENCE,
        ) as backend:
            sub = backend.subscribe(
                [DRF], lambda item, _: record(item), lambda exc, _: record(exc), reconnect=PATIENT
            )
            stop.wait()
            sub.stop()

    return run


def test_a_stopped_dmq_server_is_told_after_its_silence_and_again_when_back(
    rabbitmq: RabbitMQ, start_sim: Callable[[], DMQSimServer]
) -> None:
    first = start_sim()
    watcher = Watcher(_run(rabbitmq.host, rabbitmq.port))
    try:
        watcher.wait_for(readings_after(0.0, 3))
        first.stop()  # its jobs end with it: the stream hears nothing more
        stopped = time.monotonic()
        opened = watcher.wait_for(gap(open_=True), SILENCE + SLACK)
        assert opened.at - stopped < SILENCE + SLACK
        time.sleep(2 * SILENCE + SLACK)  # new jobs go unanswered meanwhile: nothing more is said
        assert watcher.items()[-1] is opened.item
        start_sim()
        closed = watcher.wait_for(gap(open_=False))
        watcher.wait_for(readings_after(closed.at, 2))
    finally:
        watcher.stop()
    open_gap, closed_gap = check_outage(watcher, opened, closed)
    assert "sent nothing" in open_gap.cause and closed_gap.attempts >= 2
    assert open_gap.server == f"{rabbitmq.host}:{rabbitmq.port}"


def test_a_broken_broker_connection_is_told_at_once(
    rabbitmq: RabbitMQ, start_sim: Callable[[], DMQSimServer]
) -> None:
    start_sim()
    relay = Relay((rabbitmq.host, rabbitmq.port))  # ours goes through it, the DMQ's does not
    watcher = Watcher(_run("127.0.0.1", relay.port))
    try:
        watcher.wait_for(readings_after(0.0, 3))
        broken = time.monotonic()
        relay.cut()
        opened = watcher.wait_for(gap(open_=True), SLACK)
        assert opened.at - broken < SLACK
        closed = watcher.wait_for(gap(open_=False))
        watcher.wait_for(readings_after(closed.at, 2))
    finally:
        watcher.stop()
        relay.refuse()
    open_gap, _ = check_outage(watcher, opened, closed)
    assert "DMQ connection" in open_gap.cause and str(relay.port) in open_gap.cause
