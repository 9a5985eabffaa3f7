"""DMQ end to end: DMQBackend and the simulated DMQ on a real RabbitMQ, with a real MIT KDC.

Every test starts its own simulated DMQ (two on one broker would both answer
every INIT). :class:`RawJob` drives a job by hand with pika and the core's
message builders, to send what DMQBackend never would: tampered
signatures, wrong routing keys, replayed tokens.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from acnet_proto.api.auth import JWTAuth
from acnet_proto.api.device import BasicControl
from acnet_proto.drf import DRFError
from acnet_proto.errors import AuthenticationError, ConnectionLost, DeviceError, ReadError
from acnet_proto.pc import daqdata
from acnet_proto.services.dmq import (
    REPLY_BINDINGS,
    Publish,
    drop_message,
    init_message,
    setting_message,
    setting_sample,
)
from acnet_proto.sim import SettingsPolicy
from acnet_proto.status import Status
from acnet_proto.streams.reconnect import Gap, Reconnect
from acnet_proto.types import Reading, ValueType
from tests.support.servers import free_port
from tests.support.servers.kdc import KDC
from tests.support.servers.rabbitmq import RabbitMQ
from tests.support.waiting import wait_until

pika = pytest.importorskip("pika")
pytest.importorskip("gssapi")
from acnet_proto.adapters.dmq import DMQBackend  # noqa: E402
from acnet_proto.adapters.kerberos import KerberosAuth  # noqa: E402
from acnet_proto.adapters.sim.dmq import DMQSimServer, serve  # noqa: E402

pytestmark = pytest.mark.integration

SERVICE = "daeset/bd/localhost@FNAL.GOV"
HOST = b"\x7f\x00\x00\x01"
T = 5.0  # generous per-call timeout: a failure must fail, never hang


@pytest.fixture
def start_sim(rabbitmq: RabbitMQ, kdc: KDC) -> Iterator[Callable[..., DMQSimServer]]:
    started: list[DMQSimServer] = []

    def start(**options: Any) -> DMQSimServer:
        sim = DMQSimServer(
            host=rabbitmq.host, port=rabbitmq.port, keytab=kdc.keytab, service=SERVICE, **options
        )
        started.append(sim.start())
        return sim

    yield start
    for sim in started:
        sim.stop()


@pytest.fixture
def sim(start_sim: Callable[..., DMQSimServer]) -> DMQSimServer:
    return start_sim()


@pytest.fixture
def connect(rabbitmq: RabbitMQ, kdc: KDC) -> Iterator[Callable[..., DMQBackend]]:
    made: list[DMQBackend] = []

    def connect(**options: Any) -> DMQBackend:
        options.setdefault("auth", KerberosAuth())
        backend = DMQBackend(rabbitmq.host, rabbitmq.port, service=SERVICE, timeout=T, **options)
        made.append(backend)
        return backend

    yield connect
    for backend in made:
        backend.close()


@pytest.fixture
def backend(sim: DMQSimServer, connect: Callable[..., DMQBackend]) -> DMQBackend:
    return connect()


class RawJob:
    """One DMQ job driven by hand over its own connection."""

    def __init__(self, rabbitmq: RabbitMQ, request: Any) -> None:
        self.connection = pika.BlockingConnection(rabbitmq.connection_parameters())
        self.channel = self.connection.channel()
        self.exchange = str(uuid.uuid4())
        self.queue = self.channel.queue_declare("", exclusive=True).method.queue
        self.channel.exchange_declare(self.exchange, exchange_type="topic", auto_delete=True)
        for key in REPLY_BINDINGS:
            self.channel.queue_bind(self.queue, self.exchange, routing_key=key)
        self.context = KerberosAuth().context(SERVICE, mutual=False)
        self.init = init_message(
            request,
            exchange=self.exchange,
            message_id=str(uuid.uuid4()),
            app_id="raw-test",
            host_address=HOST,
            token=self.context.step(None),
            signer=self.context,
        )

    def publish(self, message: Publish) -> None:
        properties = pika.BasicProperties(
            message_id=message.message_id,
            correlation_id=message.correlation_id,
            reply_to=message.reply_to,
            app_id=message.app_id,
            headers=dict(message.headers or {}),
        )
        self.channel.basic_publish(message.exchange, message.routing_key, message.body, properties)

    def setting(self, key_drf: str, value: Any, tamper: bool = False) -> Publish:
        body = daqdata.encode(setting_sample(key_drf, value, 0))
        message = setting_message(
            self.exchange,
            key_drf,
            body,
            message_id=str(uuid.uuid4()),
            host_address=HOST,
            signer=self.context,
        )
        if tamper:
            mic = message.headers["signature"]
            message = replace(message, headers={**message.headers, "signature": flip(mic)})
        return message

    def next(self) -> tuple[str, Any, str | None]:
        """The next reply (server heartbeats skipped): routing key, sample, correlation id."""
        for method, props, body in self.channel.consume(
            self.queue, auto_ack=True, inactivity_timeout=T
        ):
            assert method is not None, f"no reply within {T} s"
            if method.routing_key != "Q":
                return method.routing_key, daqdata.decode_reply(body), props.correlation_id
        raise AssertionError("the consumer ended")

    def close(self) -> None:
        self.connection.close()


@pytest.fixture
def raw(rabbitmq: RabbitMQ, kdc: KDC) -> Iterator[Callable[[Any], RawJob]]:
    jobs: list[RawJob] = []

    def make(request: Any) -> RawJob:
        jobs.append(RawJob(rabbitmq, request))
        return jobs[-1]

    yield make
    for job in jobs:
        job.close()


def flip(data: bytes) -> bytes:
    return bytes([data[0] ^ 0x01]) + data[1:]


def status_of(sample: Any) -> Status:
    return Status(sample.facility_code, sample.error_number)


# ------------------------------------------------------------------------- reads


def test_read_and_get_follow_the_device_model(backend: DMQBackend, sim: DMQSimServer) -> None:
    reading = backend.get("M:OUTTMP")
    assert reading.ok and reading.value_type is ValueType.SCALAR and reading.drf == "M:OUTTMP"
    expected = sim.model.device("M:OUTTMP").reading(reading.timestamp.timestamp())[0]
    assert reading.value == pytest.approx(expected, abs=1e-4)  # stamped to the millisecond
    assert isinstance(backend.read("M:OUTTMP"), float)
    assert backend.read("Z:STRTST") == "the quick brown fox"
    status = backend.get("Z|ACLTST")
    assert status.value_type is ValueType.BASIC_STATUS and status.value["ready"] is True


def test_get_many_keeps_order_duplicates_and_errors(backend: DMQBackend) -> None:
    drfs = ["M:OUTTMP", "Z:ACLTS1[0:4]", "Z:NOTFND", "M:OUTTMP", "M:OUTTMP.SETTING"]
    readings = backend.get_many(drfs)
    assert [r.drf for r in readings] == drfs
    assert readings[0].ok and readings[3].value == readings[0].value
    assert readings[1].value_type is ValueType.SCALAR_ARRAY and readings[1].value.shape == (5,)
    np.testing.assert_allclose(readings[1].value[1:] - readings[1].value[:-1], 1.5)
    # the lab's DPM's answer to a device it lacks: a warning with no data, not ok
    assert (readings[2].facility_code, readings[2].status.name) == (17, "DPM_PEND")
    assert readings[2].is_warning and not readings[2].ok
    assert readings[4].status.name == "DBM_NOPROP"  # M:OUTTMP is read-only
    with pytest.raises(DeviceError, match=r"Z:NOTFND.*check the device name") as raised:
        backend.read("Z:NOTFND")
    assert (raised.value.facility_code, raised.value.error_code) == (17, 1)
    with pytest.raises(ReadError) as caught:
        backend.read_many(["M:OUTTMP", "Z:NOTFND"])
    assert [r.ok for r in caught.value.readings] == [True, False]
    with pytest.raises(DRFError):
        backend.get_many(["M:OUTTMP", "not a drf"])


def test_pending_comes_first_and_the_client_waits_for_data(
    start_sim: Callable[..., DMQSimServer], connect: Callable[..., DMQBackend], raw: Any
) -> None:
    start_sim(init_delay=0.5)
    job = raw(daqdata.ReadingRequestRequest(data_request=["M:OUTTMP@I"]))
    job.publish(job.init)
    key, first, _ = job.next()
    assert key == "R.M:OUTTMP@I" and status_of(first).name == "DMQ_PENDING"
    key, second, _ = job.next()
    assert key == "R.M:OUTTMP@I" and type(second) is daqdata.DoubleSampleReply
    assert connect().get("M:OUTTMP").ok  # PENDING did not end the read


# ----------------------------------------------------------------------- streams


def test_subscribe_delivers_each_entry_at_its_period(backend: DMQBackend) -> None:
    fast, slow = "M:OUTTMP@p,100", "Z:ACLTS1[0:1]@p,250"
    got: dict[str, list[Any]] = {fast: [], slow: []}
    with backend.subscribe([fast, slow]) as stream:
        for reading, handle in stream.readings(timeout=T):
            assert handle is stream and reading.ok
            got[reading.drf].append(reading)
            if len(got[fast]) == 11:
                break
    assert stream.stopped
    stamps = [r.timestamp.timestamp() for r in got[fast]]
    assert stamps == sorted(stamps) and stamps[-1] - stamps[0] >= 0.99  # 10 periods of 100 ms
    assert 4 <= len(got[slow]) <= 5  # at 0, 250, 500, 750 (and 1000) ms
    assert got[slow][0].value.shape == (2,)


def test_subscribe_with_a_callback(backend: DMQBackend) -> None:
    seen: list[Any] = []
    enough = threading.Event()

    def on_reading(reading: Any, handle: Any) -> None:
        seen.append((reading, handle))
        if len(seen) == 3:
            enough.set()

    stream = backend.subscribe(["M:OUTTMP@p,100"], callback=on_reading)
    try:
        assert enough.wait(T)
        with pytest.raises(RuntimeError, match="callback"):
            next(stream.readings())
    finally:
        stream.stop()
    assert stream.stopped and stream.exc is None
    assert all(handle is stream and reading.ok for reading, handle in seen)


def test_an_idle_job_is_disposed_and_the_stream_ends(
    start_sim: Callable[..., DMQSimServer], connect: Callable[..., DMQBackend]
) -> None:
    sim = start_sim(idle_timeout=1.0, heartbeat_period=0.2)
    backend = connect(server_silence=1.0)  # keep-alives every 5 s: too rare for this server
    count = 0
    stream = backend.subscribe(["M:OUTTMP@p,100"], reconnect=False)
    with stream, pytest.raises(ConnectionLost, match="sent nothing"):
        for _ in stream.readings(timeout=T):
            count += 1
    assert count >= 5
    assert sim.disposed == 1 and sim.job_count == 0
    assert any("idle" in why for why in sim.refusals())


def test_a_job_the_server_forgot_starts_again_after_a_gap(
    start_sim: Callable[..., DMQSimServer], connect: Callable[..., DMQBackend]
) -> None:
    sim = start_sim(idle_timeout=1.0, heartbeat_period=0.2)
    backend = connect(server_silence=1.0)  # keep-alives every 5 s: the job is disposed of
    seen: list[Reading | Gap] = []
    quick = Reconnect(initial_backoff=0.05, max_backoff=0.2)
    with backend.subscribe(["M:OUTTMP@p,100"], reconnect=quick) as stream:
        for reading, _ in stream.readings(timeout=T):
            seen.append(reading)
            gaps = [i for i, item in enumerate(seen) if isinstance(item, Gap) and not item.open]
            if gaps and len(seen) - gaps[0] > 3:
                break
    assert stream.exc is None
    opened, gap = (item for item in seen if isinstance(item, Gap))
    assert opened.open and "sent nothing" in opened.cause and opened.since == gap.since
    assert "sent nothing" in gap.cause and gap.attempts == 1
    assert all(item.ok for item in seen if not isinstance(item, Gap))
    assert sim.disposed >= 1  # the first job, for want of keep-alives


def test_keepalives_keep_a_job_past_the_idle_limit(
    start_sim: Callable[..., DMQSimServer], connect: Callable[..., DMQBackend]
) -> None:
    sim = start_sim(idle_timeout=1.0, heartbeat_period=0.2)
    backend = connect(keepalive=0.3, server_silence=1.0)
    with backend.subscribe(["M:OUTTMP@p,100"]) as stream:
        for count, _ in enumerate(stream.readings(timeout=T), 1):
            if count == 25:  # 2.4 s: well past the idle limit
                break
        assert sim.disposed == 0 and sim.job_count == 1


# ------------------------------------------------------------------------ writes


def test_write_scalar_array_and_text(backend: DMQBackend, sim: DMQSimServer) -> None:
    assert backend.write("Z:ACLTST", 12.5).ok
    assert backend.read("Z:ACLTST.SETTING") == 12.5
    assert backend.write("Z:ACLTS1[0:2]", [1.0, 2.0, 3.0]).ok
    np.testing.assert_array_equal(backend.read("Z:ACLTS1.SETTING[0:3]"), [1.0, 2.0, 3.0, 4.5])
    assert backend.write("Z:STRTST", "hello dmq").ok
    assert backend.read("Z:STRTST") == "hello dmq"
    assert sim.model.device("Z:ACLTST").setting == [12.5]


def test_write_basic_control(backend: DMQBackend, sim: DMQSimServer) -> None:
    status = sim.model.device("Z:ACLTST").status
    assert backend.write("Z:ACLTST.CONTROL", BasicControl.OFF).ok
    assert backend.read("Z|ACLTST")["on"] is False and status.on is False
    assert backend.write("Z|ACLTST", BasicControl.ON).ok
    assert backend.write("Z&ACLTST", daqdata.BasicControl.NEGATIVE).ok
    assert (status.on, status.positive) == (True, False)
    # LOCAL has no DAQData value: it goes as the number 7, Z:ACLTST's TEST, which changes nothing
    before = status.word
    assert backend.write("Z:ACLTST.CONTROL", BasicControl.LOCAL).ok and status.word == before
    assert backend.write("Z:ACLTST.CONTROL", 25).status.name == "DIO_SCALEFAIL"


def test_write_many_partial_failure_keeps_input_order(backend: DMQBackend) -> None:
    results = backend.write_many(
        [("Z:ACLTST", 1.0), ("Z:NOTFND", 2.0), ("M:OUTTMP", 3.0), ("Z:ACLTS1[3]", 9.0)]
    )
    assert [r.drf for r in results] == ["Z:ACLTST", "Z:NOTFND", "M:OUTTMP", "Z:ACLTS1[3]"]
    assert [r.status.name for r in results] == [
        "DMQ_OK",
        "DPM_PEND",
        "DBM_NOPROP",
        "DMQ_OK",
    ]
    assert backend.read("Z:ACLTS1.SETTING[3]") == 9.0


def test_bad_settings_are_refused_before_sending(backend: DMQBackend, sim: DMQSimServer) -> None:
    with pytest.raises(TypeError, match="binary"):
        backend.write("Z:RAWTST", b"\x00")
    with pytest.raises(DRFError):
        backend.write("Z:ACLTST.DESCRIPTION", 1.0)
    assert sim.job_count == 0


def test_policy_refuses_devices_no_role_allows(
    start_sim: Callable[..., DMQSimServer], connect: Callable[..., DMQBackend]
) -> None:
    only_array = SettingsPolicy.from_toml(
        'default_roles = ["t"]\n[roles.t]\nallow = ["Z:ACLTS1"]\n'
    )
    sim = start_sim(policy=only_array)
    backend = connect()
    assert backend.write("Z:ACLTST", 99.0).status.name == "DPM_PRIV"
    assert sim.model.device("Z:ACLTST").setting == [45.0]
    assert backend.write("Z:ACLTS1[0]", 5.0).ok


def test_write_sessions_are_reused_then_closed_when_idle(
    sim: DMQSimServer, connect: Callable[..., DMQBackend]
) -> None:
    backend = connect(write_session_ttl=0.5)
    assert backend.write("Z:ACLTST", 1.0).ok
    assert backend.write("Z:ACLTST", 2.0).ok
    assert sim.job_count == 1  # both went through one session
    wait_until(lambda: sim.job_count == 0, "the idle session's D")
    assert sim.disposed == 1
    assert backend.write("Z:ACLTST", 3.0).ok  # a new session


# ---------------------------------------------------------------------- security


def test_no_kerberos_is_an_authentication_error(rabbitmq: RabbitMQ) -> None:
    with pytest.raises(AuthenticationError, match=r"auth=KerberosAuth\(\)"):
        DMQBackend(rabbitmq.host, rabbitmq.port)
    token = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJvcGVyYXRvciJ9.x"
    with pytest.raises(AuthenticationError, match="Kerberos"):
        DMQBackend(rabbitmq.host, rabbitmq.port, auth=JWTAuth(token))


def test_an_expired_ticket_is_refused_at_the_next_operation(
    kdc: KDC, sim: DMQSimServer, connect: Callable[..., DMQBackend]
) -> None:
    # long enough to be still valid when KerberosAuth takes it on a loaded machine
    ccache = kdc.kinit("operator", lifetime="4s")
    backend = connect(auth=KerberosAuth(ccache=ccache))  # valid now

    def expired() -> bool:
        return kdc.run("klist", "-s", "-c", f"FILE:{ccache}").returncode != 0

    wait_until(expired, "expiry", limit=T + 4)
    for operation in (
        lambda: backend.read("M:OUTTMP"),
        lambda: backend.write("Z:ACLTST", 1.0),
        lambda: backend.subscribe(["M:OUTTMP@p,1000"]),
    ):
        with pytest.raises(AuthenticationError, match=r"expired|kinit"):
            operation()
    assert sim.job_count == 0


def test_a_tampered_signature_is_a_security_violation(sim: DMQSimServer, raw: Any) -> None:
    drf = "Z:ACLTST.SETTING@N"
    job = raw(daqdata.SettingRequestRequest(data_request=[drf]))
    job.publish(job.init)
    assert status_of(job.next()[1]).name == "DMQ_PENDING"
    job.publish(job.setting(drf, 77.0, tamper=True))
    key, reply, correlation_id = job.next()
    assert (key, status_of(reply).error, correlation_id) == (f"R.{drf}", -99, "")
    assert sim.model.device("Z:ACLTST").setting == [45.0]


def test_a_tampered_init_is_refused_on_r(sim: DMQSimServer, raw: Any) -> None:
    job = raw(daqdata.ReadingRequestRequest(data_request=["M:OUTTMP@I"]))
    tampered = {**job.init.headers, "signature": flip(job.init.headers["signature"])}
    job.publish(replace(job.init, headers=tampered))
    key, reply, correlation_id = job.next()
    assert (key, status_of(reply).name) == ("R", "DMQ_SECURITY_VIOLATION")
    assert correlation_id == job.init.message_id


def test_a_setting_key_that_differs_from_the_init_is_invalid(sim: DMQSimServer, raw: Any) -> None:
    drf = "Z:ACLTST.SETTING@N"
    job = raw(daqdata.SettingRequestRequest(data_request=[drf]))
    job.publish(job.init)
    job.next()  # PENDING
    job.publish(job.setting("Z:ACLTS1.SETTING@N", 5.0))
    key, reply, _ = job.next()
    assert (key, status_of(reply).error) == (f"R.{drf}", -98)
    assert sim.model.device("Z:ACLTS1").setting[0] == 0.0
    job.publish(job.setting(drf, 5.0))  # the signatures are still in step
    assert status_of(job.next()[1]).name == "DMQ_OK"
    assert sim.model.device("Z:ACLTST").setting == [5.0]


def test_a_replayed_init_and_one_without_a_token_are_refused(sim: DMQSimServer, raw: Any) -> None:
    job = raw(daqdata.ReadingRequestRequest(data_request=["M:OUTTMP@N"]))
    job.publish(job.init)
    assert status_of(job.next()[1]).name == "DMQ_PENDING"
    job.publish(drop_message(job.exchange))
    wait_until(lambda: sim.job_count == 0, "the D")
    job.publish(job.init)  # the same token again
    key, reply, _ = job.next()
    assert (key, status_of(reply).name) == ("R", "DMQ_SECURITY_VIOLATION")
    assert "replay" in reply.message
    no_token = {k: v for k, v in job.init.headers.items() if k != "gss-token"}
    job.publish(replace(job.init, headers=no_token))
    assert status_of(job.next()[1]).name == "DMQ_LOGIN_REQUIRED"


# ---------------------------------------------------------------------- failures


def test_no_server_means_timeouts_and_nothing_sent_late(
    rabbitmq: RabbitMQ, connect: Callable[..., DMQBackend]
) -> None:
    backend = connect()  # a broker, but no DMQ server consuming INITs
    with pytest.raises(ReadError) as caught:
        backend.get_many(["M:OUTTMP", "Z:ACLTST"], timeout=0.5)
    assert {r.status.name for r in caught.value.readings} == {"ACNET_REQTMO"}
    result = backend.write("Z:ACLTST", 1.0, timeout=0.5)
    assert result.status.name == "ACNET_REQTMO" and "not applied" in result.message


def test_an_unreachable_broker(kdc: KDC) -> None:
    with DMQBackend("127.0.0.1", free_port(), auth=KerberosAuth(), service=SERVICE) as backend:
        with pytest.raises(ReadError) as caught:
            backend.get("M:OUTTMP", timeout=2)
        assert caught.value.readings[0].status.name == "ACNET_DISCONNECTED"
        assert backend.write("Z:ACLTST", 1.0, timeout=2).status.name == "ACNET_DISCONNECTED"
        # an outage from the start: told at once, then the stream's own end
        stream = backend.subscribe(["M:OUTTMP@p,1000"], reconnect=False)
        with stream, pytest.raises(ConnectionLost, match="could not start the job"):
            next(stream.readings(timeout=2))


def test_a_client_gone_before_its_init_does_not_stop_the_server(
    sim: DMQSimServer, backend: DMQBackend, raw: Any
) -> None:
    job = raw(daqdata.ReadingRequestRequest(data_request=["M:OUTTMP@p,100"]))
    job.channel.exchange_delete(job.exchange)  # its return address is gone
    job.publish(job.init)
    wait_until(lambda: sim.disposed == 1, "the server dropping the orphan job")
    assert backend.get("M:OUTTMP").ok  # the server carries on
    wait_until(lambda: sim.job_count == 0, "the read's D")


def test_serve_for_the_cli_runs_until_cancelled(
    rabbitmq: RabbitMQ, kdc: KDC, connect: Callable[..., DMQBackend]
) -> None:
    async def main() -> tuple[float, DMQSimServer]:
        started: list[DMQSimServer] = []
        ready = asyncio.Event()

        def on_ready(server: DMQSimServer) -> None:
            started.append(server)
            ready.set()

        task = asyncio.create_task(
            serve(rabbitmq.url, keytab=kdc.keytab, service=SERVICE, ready=on_ready)
        )
        await asyncio.wait_for(ready.wait(), T)
        value = await asyncio.to_thread(connect().read, "M:OUTTMP")
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return value, started[0]

    value, server = asyncio.run(main())
    assert isinstance(value, float)
    assert server.wait(0) and server.failure is None  # stopped, and not by a failure
