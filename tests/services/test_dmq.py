"""DMQ's pure logic (acnet_proto.services.dmq and .dmq_server): layouts, mappings, jobs.

No broker and no KDC here: the signer and acceptor below sign with SHA-256 so
that every byte is predictable; tests/adapters/dmq/test_dmq.py runs the same code against
a real RabbitMQ and a real KDC.
"""

from __future__ import annotations

import hashlib
import math
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pytest

from acnet_proto.api.device import BasicControl
from acnet_proto.drf import DRFError
from acnet_proto.errors import AuthenticationError, ReadError, RemoteProtocolError
from acnet_proto.pc import daqdata
from acnet_proto.services.dmq import (
    DMQ_INVALID_REQUEST,
    DMQ_LOGIN_REQUIRED,
    DMQ_OK,
    DMQ_PENDING,
    DMQ_SECURITY_VIOLATION,
    Publish,
    ReadJob,
    SettingJob,
    StreamJob,
    mic_body,
    reading_from_sample,
    reading_key,
    service_principal,
    setting_key,
    setting_message,
    setting_sample,
)
from acnet_proto.sim import DeviceModel, SettingsPolicy
from acnet_proto.sim.dmq import Bind, Delivery, DMQService, Unbind, setting_value
from acnet_proto.sim.schedule import ClockEvents
from acnet_proto.status import Status
from acnet_proto.types import ValueType

HOST = bytes([131, 225, 142, 68])
# ReadingRequest(dataRequest=["M:OUTTMP@I"]), spelled out from spec §1: magic, a
# 3-array of protocol id (-289864039), message id (-22510) and the struct
# (tag 25212 -> an array of one 10-byte string)
READ_OUTTMP = bytes.fromhex("53444402510314eeb9069912a812510212627c5101410a") + b"M:OUTTMP@I"


class Signer:
    """Signs with SHA-256 and remembers what it signed."""

    def __init__(self) -> None:
        self.signed: list[bytes] = []

    def get_mic(self, message: bytes) -> bytes:
        self.signed.append(message)
        return hashlib.sha256(message).digest()


class Acceptor:
    """The server side of :class:`Signer`: accepts the token b"operator" only."""

    complete = False
    initiator: str | None = None

    def step(self, token: bytes) -> None:
        if token != b"operator":
            raise AuthenticationError("the client's Kerberos token was refused")
        self.complete, self.initiator = True, "operator@FNAL.GOV"

    def verify_mic(self, message: bytes, mic: bytes) -> bool:
        return self.complete and hashlib.sha256(message).digest() == mic


def sample(message) -> bytes:
    return daqdata.encode(message)


PENDING = sample(daqdata.ErrorSampleReply(facility_code=72, error_number=1, time=0))


# ------------------------------------------------------------------ the wire


def test_reading_request_bytes_match_the_spec() -> None:
    assert daqdata.encode(daqdata.ReadingRequestRequest(data_request=["M:OUTTMP@I"])) == READ_OUTTMP


def test_mic_body_is_the_java_create_body_layout() -> None:
    expected = (
        READ_OUTTMP
        + b"\x00"
        + b"id-1"
        + b"\x00"
        + b"\x00"  # no correlation id: an empty string
        + b"3f1c-exchange"
        + b"\x00"
        + b"acnet-proto"
        + b"\x00"
        + b"\x83\xe1\x8e\x44"
        + b"\x00"
    )
    got = mic_body(READ_OUTTMP, "id-1", None, "3f1c-exchange", "acnet-proto", HOST)
    assert got == expected


def test_mic_body_with_every_property_and_utf8() -> None:
    got = mic_body(b"\x00body", "m", "c", "r", "é", b"")
    assert got == b"\x00body\x00m\x00c\x00r\x00\xc3\xa9\x00\x00"


def test_init_message_signs_the_layout_and_carries_the_headers() -> None:
    signer = Signer()
    job = ReadJob(["M:OUTTMP"])
    init = job.init_message(
        exchange="ex",
        message_id="id-1",
        app_id="app",
        host_address=HOST,
        token=b"tok",
        signer=signer,
    )
    assert init == Publish(
        "amq.topic",
        "I",
        READ_OUTTMP,
        message_id="id-1",
        reply_to="ex",
        app_id="app",
        headers={
            "gss-token": b"tok",
            "signature": hashlib.sha256(signer.signed[0]).digest(),
            "host-address": HOST,
        },
    )
    assert signer.signed == [mic_body(READ_OUTTMP, "id-1", None, "ex", "app", HOST)]
    assert job.init_message_id == "id-1"


def test_setting_message_goes_to_s_key_with_its_signature() -> None:
    signer = Signer()
    body = sample(daqdata.DoubleSampleReply(value=1.5, time=7))
    message = setting_message(
        "ex", "Z:ACLTST.SETTING@N", body, message_id="m1", host_address=HOST, signer=signer
    )
    assert (message.exchange, message.routing_key) == ("ex", "S.Z:ACLTST.SETTING@N")
    assert (message.message_id, message.correlation_id) == ("m1", "m1")
    assert signer.signed == [mic_body(body, "m1", "m1", None, None, HOST)]
    assert message.headers == {"signature": signer.get_mic(signer.signed[0]), "host-address": HOST}


def test_routing_keys_and_their_limit() -> None:
    assert reading_key("M:OUTTMP@I") == "R.M:OUTTMP@I"
    assert setting_key("Z:ACLTST.SETTING@N") == "S.Z:ACLTST.SETTING@N"
    long_drf = "Z:ACLTS1[0:4]" + ".RAW" * 70
    with pytest.raises(ValueError, match="at most 255 bytes"):
        reading_key(long_drf)
    with pytest.raises(TypeError, match="must be a str"):
        reading_key(b"M:OUTTMP")  # type: ignore[arg-type]


def test_service_principal() -> None:
    assert service_principal("dmq.fnal.gov") == "daeset/bd/dmq.fnal.gov@FNAL.GOV"
    with pytest.raises(ValueError, match="host"):
        service_principal(" ")


# ------------------------------------------------------------- samples -> readings

T = 1763769600015
AT = datetime.fromtimestamp(T / 1000, UTC)


@pytest.mark.parametrize(
    ("message", "value_type", "value"),
    [
        (daqdata.DoubleSampleReply(value=72.5, time=T), ValueType.SCALAR, 72.5),
        (daqdata.IntegerSampleReply(value=-3, time=T), ValueType.SCALAR, -3),
        (daqdata.BooleanSampleReply(value=True, time=T), ValueType.SCALAR, True),
        (daqdata.StringSampleReply(value="hi", time=T), ValueType.TEXT, "hi"),
        (
            daqdata.StringArraySampleReply(value=["a", "b"], time=T),
            ValueType.TEXT_ARRAY,
            ("a", "b"),
        ),
        (daqdata.BinarySampleReply(value=b"\x01\x02", time=T), ValueType.RAW, b"\x01\x02"),
        (
            daqdata.BasicControlSampleReply(value=daqdata.BasicControl.OFF, time=T),
            ValueType.SCALAR,
            BasicControl.OFF,
        ),
        (
            daqdata.BasicStatusSampleReply(
                value=daqdata.BasicStatus(
                    on=True, ready=False, remote=True, positive=True, ramp=False
                ),
                time=T,
            ),
            ValueType.BASIC_STATUS,
            {"on": True, "ready": False, "remote": True, "positive": True, "ramp": False},
        ),
    ],
)
def test_samples_become_readings(message, value_type, value) -> None:
    reading = reading_from_sample(daqdata.decode_reply(daqdata.encode(message)), "X:DEV")
    assert reading.ok and reading.value_type is value_type
    assert reading.value == value and type(reading.value) is type(value)
    assert (reading.drf, reading.timestamp) == ("X:DEV", AT)


def test_array_samples_keep_their_element_type() -> None:
    for message, dtype in [
        (daqdata.DoubleArraySampleReply(value=[1.0, 2.5], time=T), np.float64),
        (daqdata.IntegerArraySampleReply(value=[1, 2], time=T), np.int32),
        (daqdata.BooleanArraySampleReply(value=[True, False], time=T), np.bool_),
    ]:
        reading = reading_from_sample(daqdata.decode_reply(daqdata.encode(message)), "X:ARR")
        assert reading.value_type is ValueType.SCALAR_ARRAY
        assert reading.value.dtype == dtype and not reading.value.flags.writeable
        np.testing.assert_array_equal(reading.value, list(message.value))


def test_alarm_sample_becomes_a_dict() -> None:
    block = daqdata.AnalogAlarm(
        minimum=-1.0,
        maximum=9.0,
        alarm_enable=True,
        alarm_status=False,
        abort=False,
        abort_inhibit=True,
        tries_needed=2,
        tries_now=0,
    )
    reading = reading_from_sample(daqdata.AnalogAlarmSampleReply(value=block, time=T), "Z@ACLTST")
    assert reading.value_type is ValueType.ANALOG_ALARM
    assert reading.value == block.to_dict()


def test_error_sample_is_an_error_reading() -> None:
    message = daqdata.ErrorSampleReply(facility_code=17, error_number=-26, time=T, cycle_time=9)
    reading = reading_from_sample(message, "Z:NOTFND@I")
    assert reading.is_error and reading.value is None and not reading.ok
    assert (reading.facility_code, reading.error_code, reading.cycle) == (17, -26, 9)
    assert reading.status.name == "DPM_NO_SUCH_DEVICE"
    assert "Device not found" in reading.message
    told = reading_from_sample(message.replace(message="no such thing"), "Z:NOTFND")
    assert told.message == "no such thing"
    # int32 codes no 16-bit ACNET status holds still read, with a plain message
    odd = reading_from_sample(message.replace(facility_code=1000, error_number=-70000), "Z:ODD")
    assert (odd.facility_code, odd.error_code, odd.message) == (1000, -70000, "error [1000 -70000]")


def test_a_request_is_not_a_sample() -> None:
    with pytest.raises(TypeError, match="not a DAQData sample"):
        reading_from_sample(daqdata.ReadingRequestRequest(data_request=["M:OUTTMP"]), "M:OUTTMP")


# ------------------------------------------------------------ values -> samples

WIRE = {
    "RESET": 26767,
    "ON": 13987,
    "OFF": 1495,
    "POSITIVE": 10612,
    "NEGATIVE": 13679,
    "RAMP": -15441,
    "DC": -6841,
}  # protos/pc/daqdata.json "enums"


@pytest.mark.parametrize("command", list(BasicControl)[:7], ids=lambda c: c.name)
def test_basic_control_goes_as_its_daqdata_wire_value(command: BasicControl) -> None:
    message = setting_sample("Z:ACLTST.CONTROL", command, 5)
    assert type(message) is daqdata.BasicControlSampleReply
    assert int(message.value) == WIRE[command.name]
    # the enum's own encoding: tag 0x8n, then the value
    wire = WIRE[command.name].to_bytes(2, "big", signed=True)
    assert b"\x82" + wire in daqdata.encode(message)


def test_basic_control_on_encodes_like_the_reference() -> None:
    encoded = daqdata.encode(setting_sample("Z|ACLTST", BasicControl.ON, 0))
    assert b"\x82\x36\xa3" in encoded  # the reference marshaller's bytes for ON (13987)


@pytest.mark.parametrize("command", [BasicControl.LOCAL, BasicControl.REMOTE, BasicControl.TRIP])
def test_commands_daqdata_lacks_go_as_their_ordinal(command: BasicControl) -> None:
    message = setting_sample("Z:ACLTST.CONTROL", command, 5)
    assert message == daqdata.DoubleSampleReply(value=float(command.value), time=5)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (45.0, daqdata.DoubleSampleReply(value=45.0, time=1)),
        (np.float32(2.5), daqdata.DoubleSampleReply(value=2.5, time=1)),
        (7, daqdata.IntegerSampleReply(value=7, time=1)),
        (np.int64(7), daqdata.IntegerSampleReply(value=7, time=1)),
        (True, daqdata.IntegerSampleReply(value=1, time=1)),
        ("text", daqdata.StringSampleReply(value="text", time=1)),
        (["a", "b"], daqdata.StringArraySampleReply(value=["a", "b"], time=1)),
        ([1, 2.5], daqdata.DoubleArraySampleReply(value=[1.0, 2.5], time=1)),
        (np.arange(3.0), daqdata.DoubleArraySampleReply(value=[0.0, 1.0, 2.0], time=1)),
        (
            daqdata.BasicControl.DC,
            daqdata.BasicControlSampleReply(value=daqdata.BasicControl.DC, time=1),
        ),
    ],
)
def test_values_become_samples(value, expected) -> None:
    assert setting_sample("Z:ACLTST", value, 1) == expected


@pytest.mark.parametrize(
    ("value", "error", "words"),
    [
        (b"\x00\x01", TypeError, "refuses binary"),
        ({"minimum": 1.0}, TypeError, "one alarm field"),
        (math.nan, ValueError, "finite"),
        ([1.0, math.inf], ValueError, "finite"),
        ([], ValueError, "empty list"),
        ([1.0, "x"], TypeError, "only numbers"),
        (np.zeros((2, 2)), TypeError, "2-D"),
        (2**31, ValueError, "32-bit"),
        (object(), TypeError, "expected a number"),
    ],
)
def test_bad_values_are_refused_naming_the_device(value, error, words) -> None:
    with pytest.raises(error, match=words) as caught:
        setting_sample("Z:ACLTST", value, 1)
    assert "Z:ACLTST" in str(caught.value)


def test_server_takes_the_value_a_sample_carries() -> None:
    assert setting_value(daqdata.DoubleSampleReply(value=2.0, time=0)) == 2.0
    assert setting_value(daqdata.DoubleArraySampleReply(value=[1.0, 2.0], time=0)) == [1.0, 2.0]
    assert setting_value(daqdata.StringArraySampleReply(value=["x"], time=0)) == ["x"]
    on = daqdata.BasicControlSampleReply(value=daqdata.BasicControl.ON, time=0)
    assert setting_value(on) is daqdata.BasicControl.ON
    assert setting_value(daqdata.BinarySampleReply(value=b"", time=0)) is None
    assert setting_value(daqdata.ErrorSampleReply(facility_code=1, error_number=0, time=0)) is None


# ------------------------------------------------------------------ read jobs


def test_read_job_waits_through_pending_then_takes_data() -> None:
    job = ReadJob(["M:OUTTMP", "Z:ACLTS1[0:1]@p,1000", "M:OUTTMP"])
    assert job.wire == ["M:OUTTMP@I", "Z:ACLTS1[0:1]@p,1000", "M:OUTTMP@I"]
    assert list(job.request.data_request) == ["M:OUTTMP@I", "Z:ACLTS1[0:1]@p,1000"]
    assert job.receive("R.M:OUTTMP@I", PENDING) == []
    assert job.receive("Q", b"", now=3.0) == [] and job.heard_at == 3.0
    assert not job.done
    made = job.receive("R.M:OUTTMP@I", sample(daqdata.DoubleSampleReply(value=41.7, time=T)))
    assert [(i, r.value, r.drf) for i, r in made] == [(0, 41.7, "M:OUTTMP"), (2, 41.7, "M:OUTTMP")]
    array = sample(daqdata.DoubleArraySampleReply(value=[1.0, 2.0], time=T))
    assert [i for i, _ in job.receive("R.Z:ACLTS1[0:1]@p,1000", array)] == [1]
    assert job.done
    assert job.receive("R.Z:ACLTS1[0:1]@p,1000", array) == []  # only the first counts
    assert [r.ok for r in job.readings()] == [True, True, True]


def test_read_job_ignores_keys_it_did_not_ask_for_and_uses_ref_ids() -> None:
    job = ReadJob(["M:OUTTMP", "Z:ACLTST"])
    data = daqdata.DoubleSampleReply(value=1.0, time=T)
    assert job.receive("R.G:AMANDA@I", sample(data)) == []
    assert job.receive("X.M:OUTTMP@I", sample(data)) == []
    assert [i for i, _ in job.receive("R.anything", sample(data.replace(ref_id=2)))] == [1]


def test_job_failure_answers_every_waiting_entry() -> None:
    job = ReadJob(["M:OUTTMP", "Z:ACLTST"])
    job.init_message_id = "init-1"
    refusal = sample(daqdata.ErrorSampleReply(facility_code=72, error_number=-99, time=T))
    assert job.receive("R", refusal, correlation_id="someone-else") == []
    made = job.receive("R", refusal, correlation_id="init-1")
    assert job.done and job.failure == DMQ_SECURITY_VIOLATION
    assert {r.status.name for _, r in made} == {"DMQ_SECURITY_VIOLATION"}
    other = ReadJob(["M:OUTTMP"])
    other.receive("R.null", refusal)  # job construction: no correlation id at all
    assert other.done and other.failure == DMQ_SECURITY_VIOLATION


def test_an_undecodable_reply_spoils_only_its_entry() -> None:
    job = ReadJob(["M:OUTTMP", "Z:ACLTST"])
    [(index, reading)] = job.receive("R.M:OUTTMP@I", b"SDD\x02garbage")
    assert index == 0 and reading.status.name == "ACNET_RPLYPACK"
    assert "undecodable" in reading.message
    not_a_sample = sample(daqdata.OpenListReply(list_id=4))
    [(index, reading)] = job.receive("R.Z:ACLTST@I", not_a_sample)
    assert index == 1 and "OpenListReply is not a sample" in reading.message
    assert job.done


def test_read_job_deadline_and_disconnect_fill_the_rest() -> None:
    job = ReadJob(["M:OUTTMP", "Z:ACLTST"])
    job.receive("R.Z:ACLTST@I", sample(daqdata.DoubleSampleReply(value=45.0, time=T)))
    with pytest.raises(RuntimeError, match="not done"):
        job.readings()
    timed_out = job.timed_out(2.0)
    assert isinstance(timed_out, ReadError) and "1 of 2" in timed_out.message
    assert [r.status.name for r in timed_out.readings] == ["ACNET_REQTMO", None]
    assert job.disconnected("boom").readings[0].status.name == "ACNET_DISCONNECTED"


def test_read_job_checks_drfs_before_anything() -> None:
    with pytest.raises(DRFError):
        ReadJob(["M:OUTTMP", "not a drf"])
    with pytest.raises(ValueError, match="empty"):
        ReadJob([])


def test_stream_job_passes_every_reading_and_knows_silence() -> None:
    job = StreamJob(["M:OUTTMP@p,1000"])
    data = sample(daqdata.DoubleSampleReply(value=1.0, time=T))
    assert job.receive("R.M:OUTTMP@p,1000", PENDING, now=1.0) == []
    assert len(job.receive("R.M:OUTTMP@p,1000", data, now=2.0)) == 1
    assert len(job.receive("R.M:OUTTMP@p,1000", data, now=3.0)) == 1
    assert not job.overdue(10.0, silence=30.0) and job.overdue(33.5, silence=30.0)


# ---------------------------------------------------------------- setting jobs


def ok_reply() -> bytes:
    return sample(daqdata.ErrorSampleReply(facility_code=72, error_number=0, time=T))


def test_settings_wait_for_pending_then_go_signed_in_order() -> None:
    signer = Signer()
    ids = iter(["m1", "m2", "m3"])
    job = SettingJob("Z:ACLTST.SETTING@N")
    first = job.submit("Z:ACLTST", b"one")
    second = job.submit("Z:ACLTST.SETTING", b"two")
    assert job.take_outgoing("ex", HOST, signer, lambda: next(ids)) == []  # not confirmed yet
    assert job.receive("R.Z:ACLTST.SETTING@N", PENDING) == [] and job.confirmed
    out = job.take_outgoing("ex", HOST, signer, lambda: next(ids))
    assert [(p.routing_key, p.body, p.message_id) for p in out] == [
        ("S.Z:ACLTST.SETTING@N", b"one", "m1"),
        ("S.Z:ACLTST.SETTING@N", b"two", "m2"),
    ]
    assert signer.signed == [
        mic_body(b"one", "m1", "m1", None, None, HOST),
        mic_body(b"two", "m2", "m2", None, None, HOST),
    ]
    assert job.sent == [(first, "Z:ACLTST"), (second, "Z:ACLTST.SETTING")] and job.busy
    # answers carry no correlation id: oldest first
    [(ticket, result)] = job.receive("R.Z:ACLTST.SETTING@N", ok_reply(), correlation_id="")
    assert ticket == first and result.ok and result.drf == "Z:ACLTST"
    refused = sample(daqdata.ErrorSampleReply(facility_code=17, error_number=-17, time=T))
    [(ticket, result)] = job.receive("R.Z:ACLTST.SETTING@N", refused)
    assert ticket == second and result.status.name == "DPM_PRIV" and not result.ok
    assert not job.busy
    assert job.receive("R.Z:ACLTST.SETTING@N", ok_reply()) == []  # nothing waits for it


def test_an_echoed_sample_is_success() -> None:
    job = SettingJob("Z:ACLTST.SETTING@N")
    job.receive("R.Z:ACLTST.SETTING@N", PENDING)
    ticket = job.submit("Z:ACLTST", b"x")
    job.take_outgoing("ex", HOST, Signer(), lambda: "m")
    echo = sample(daqdata.DoubleSampleReply(value=3.0, time=T))
    [(got, result)] = job.receive("R.Z:ACLTST.SETTING@N", echo)
    assert got == ticket and result.ok and result.message is None


def test_an_error_before_confirmation_fails_the_whole_job() -> None:
    job = SettingJob("Z:NOTFND.SETTING@N")
    job.init_message_id = "init-9"
    tickets = [job.submit("Z:NOTFND", b"a"), job.submit("Z:NOTFND", b"b")]
    nope = sample(daqdata.ErrorSampleReply(facility_code=17, error_number=-26, time=T))
    assert job.receive("R", nope, correlation_id="another-init") == []
    settled = job.receive("R", nope, correlation_id="init-9")
    assert [t for t, _ in settled] == tickets
    assert {r.status.name for _, r in settled} == {"DPM_NO_SUCH_DEVICE"}
    assert job.failure == Status(17, -26)
    with pytest.raises(RuntimeError, match="failed"):
        job.submit("Z:NOTFND", b"c")


def test_cancel_withdraws_only_what_was_not_sent() -> None:
    job = SettingJob("Z:ACLTST.SETTING@N")
    job.receive("R.Z:ACLTST.SETTING@N", PENDING)
    sent = job.submit("Z:ACLTST", b"a")
    job.take_outgoing("ex", HOST, Signer(), lambda: "m")
    job.confirmed = False  # as if a new session were still starting
    waiting = job.submit("Z:ACLTST", b"b")
    assert job.cancel([sent, waiting]) == [waiting]
    assert job.sent == [(sent, "Z:ACLTST")]
    [(ticket, result)] = job.fail(Status.from_name("ACNET_DISCONNECTED"), "closed")
    assert ticket == sent and result.message == "closed"


# ------------------------------------------------------------------ the server


def make_service(**options) -> tuple[DMQService, DeviceModel]:
    model = DeviceModel.default()
    service = DMQService(model, ClockEvents(model, 0.0), Acceptor, **options)
    return service, model


def signed(delivery: Delivery, tamper: bool = False) -> Delivery:
    """``delivery`` signed as a :class:`Signer` would sign it (one bit off if ``tamper``)."""
    mic = hashlib.sha256(delivery.signed_part()).digest()
    if tamper:
        mic = bytes([mic[0] ^ 1]) + mic[1:]
    return replace(delivery, headers={**(delivery.headers or {}), "signature": mic})


def init(
    body: bytes, *, exchange: str = "client-ex", token: bytes = b"operator", tamper: bool = False
) -> Delivery:
    headers = {"gss-token": token, "host-address": HOST}
    delivery = Delivery(
        "amq.topic",
        "I",
        body,
        message_id="init-1",
        reply_to=exchange,
        app_id="test",
        headers=headers,
    )
    return signed(delivery, tamper)


def published(actions) -> list[tuple[str, object]]:
    return [
        (a.routing_key, daqdata.decode_reply(a.body) if a.body else None)
        for a in actions
        if isinstance(a, Publish)
    ]


def read_request(*drfs: str) -> bytes:
    return daqdata.encode(daqdata.ReadingRequestRequest(data_request=list(drfs)))


def test_server_read_job_binds_sends_pending_then_data() -> None:
    service, model = make_service()
    actions = service.on_init(init(read_request("M:OUTTMP@I", "Z:NOTFND@I")), 100.0, 1763769600.0)
    assert actions[:2] == [Bind("client-ex", "H"), Bind("client-ex", "D")]
    sent = published(actions[2:])
    assert [key for key, _ in sent] == [
        "R.M:OUTTMP@I",
        "R.Z:NOTFND@I",
        "R.M:OUTTMP@I",
        "R.Z:NOTFND@I",
    ]
    assert sent[0][1].error_number == DMQ_PENDING.error and sent[1][1].error_number == 1
    expected = model.device("M:OUTTMP").reading(1763769600.0)[0]
    assert sent[2][1] == daqdata.DoubleSampleReply(value=expected, time=1763769600000, cycle_time=0)
    assert (sent[3][1].facility_code, sent[3][1].error_number) == (17, 1)  # DPM_PEND
    assert service.jobs["client-ex"].principal == "operator@FNAL.GOV"


@pytest.mark.parametrize(
    ("delivery", "status"),
    [
        (init(read_request("M:OUTTMP@I"), token=b""), DMQ_LOGIN_REQUIRED),
        (init(read_request("M:OUTTMP@I"), token=b"mallory"), DMQ_SECURITY_VIOLATION),
        (init(read_request("M:OUTTMP@I"), tamper=True), DMQ_SECURITY_VIOLATION),
        (init(b"SDD\x02junk"), DMQ_INVALID_REQUEST),
        (init(read_request()), DMQ_INVALID_REQUEST),
        (init(read_request("M:OUTTMP@I" + "x" * 250)), DMQ_INVALID_REQUEST),
        (
            init(daqdata.encode(daqdata.SettingRequestRequest(data_request=["Z:A@N", "Z:B@N"]))),
            DMQ_INVALID_REQUEST,
        ),
    ],
    ids=[
        "no-token",
        "bad-token",
        "bad-signature",
        "undecodable",
        "no-drfs",
        "too-long",
        "two-settings",
    ],
)
def test_server_refuses_bad_inits_on_r_with_the_init_id(delivery: Delivery, status: Status) -> None:
    service, _ = make_service()
    [refusal] = service.on_init(delivery, 0.0, 0.0)
    assert (refusal.exchange, refusal.routing_key, refusal.correlation_id) == (
        "client-ex",
        "R",
        "init-1",
    )
    error = daqdata.decode_reply(refusal.body)
    assert Status(error.facility_code, error.error_number) == status
    assert error.message == service.refusals[-1]
    assert service.jobs == {}


def setting_delivery(
    key: str, body: bytes, *, exchange: str = "client-ex", tamper: bool = False
) -> Delivery:
    delivery = Delivery(
        exchange, key, body, message_id="s1", correlation_id="s1", headers={"host-address": HOST}
    )
    return signed(delivery, tamper)


def test_server_setting_checks_signature_then_key_then_applies() -> None:
    service, model = make_service()
    body = daqdata.encode(daqdata.SettingRequestRequest(data_request=["Z:ACLTST.SETTING@N"]))
    actions = service.on_init(init(body), 0.0, 0.0)
    assert Bind("client-ex", "S.#") in actions
    value = sample(daqdata.DoubleSampleReply(value=12.0, time=0))

    def answer(delivery: Delivery) -> Status:
        [(key, reply)] = published(service.on_job_message(delivery, 1.0, 1.0))
        assert key == "R.Z:ACLTST.SETTING@N"
        return Status(reply.facility_code, reply.error_number)

    assert (
        answer(setting_delivery("S.Z:ACLTST.SETTING@N", value, tamper=True))
        == DMQ_SECURITY_VIOLATION
    )
    assert answer(setting_delivery("S.Z:ACLTST@N", value)) == DMQ_INVALID_REQUEST
    assert model.device("Z:ACLTST").setting == [45.0]
    assert answer(setting_delivery("S.Z:ACLTST.SETTING@N", value)) == DMQ_OK
    assert model.device("Z:ACLTST").setting == [12.0]
    binary = sample(daqdata.BinarySampleReply(value=b"\0\0\0\0", time=0))
    assert answer(setting_delivery("S.Z:ACLTST.SETTING@N", binary)).name == "DMQ_INVALID_DATA_TYPE"


def test_server_authorizes_with_any_role_the_principal_holds() -> None:
    policy = SettingsPolicy.from_toml(
        'default_roles = ["a"]\n[roles.a]\nallow = ["Z:ACLTS1"]\n'
        '[roles.b]\nallow = ["Z:ACLTST"]\n[principals."operator@FNAL.GOV"]\nroles = ["b"]\n'
    )
    service, model = make_service(policy=policy)
    for exchange, drf in [("e1", "Z:ACLTST.SETTING@N"), ("e2", "Z:STRTST.SETTING@N")]:
        body = daqdata.encode(daqdata.SettingRequestRequest(data_request=[drf]))
        service.on_init(init(body, exchange=exchange), 0.0, 0.0)
    number = sample(daqdata.DoubleSampleReply(value=1.0, time=0))
    allowed = setting_delivery("S.Z:ACLTST.SETTING@N", number, exchange="e1")
    [(_, reply)] = published(service.on_job_message(allowed, 0.0, 0.0))
    assert reply.error_number == 0 and model.device("Z:ACLTST").setting == [1.0]
    text = sample(daqdata.StringSampleReply(value="x", time=0))
    refused = setting_delivery("S.Z:STRTST.SETTING@N", text, exchange="e2")
    [(_, reply)] = published(service.on_job_message(refused, 0.0, 0.0))
    assert Status(reply.facility_code, reply.error_number).name == "DPM_PRIV"
    assert model.device("Z:STRTST").setting == "the quick brown fox"


def test_server_heartbeats_streams_and_disposes_idle_jobs() -> None:
    service, _ = make_service(idle_timeout=2.0, heartbeat_period=0.5)
    service.on_init(init(read_request("M:OUTTMP@p,200")), 10.0, 10.0)
    assert service.next_due() == pytest.approx(10.2)
    ticks = [published(service.tick(10.0 + step / 10, 10.0)) for step in range(1, 11)]
    keys = [key for tick in ticks for key, _ in tick]
    assert keys.count("Q") == 2  # at 10.5 and 11.0
    assert keys.count("R.M:OUTTMP@p,200") == 5  # 10.2 ... 11.0
    assert service.on_job_message(Delivery("client-ex", "H", b""), 11.5, 0.0) == []
    assert service.tick(13.4, 0.0) != []  # heard at 11.5: still alive
    assert service.tick(13.5, 0.0) == [Unbind("client-ex", "H"), Unbind("client-ex", "D")]
    assert service.jobs == {} and service.disposed == 1 and service.next_due() is None


def test_server_drops_a_job_on_d() -> None:
    service, _ = make_service()
    service.on_init(init(read_request("M:OUTTMP@p,1000")), 0.0, 0.0)
    assert service.on_job_message(Delivery("client-ex", "D", b""), 1.0, 1.0) == [
        Unbind("client-ex", "H"),
        Unbind("client-ex", "D"),
    ]
    assert service.on_job_message(Delivery("client-ex", "H", b""), 1.0, 1.0) == []
    # a second INIT on a running job's exchange is refused
    service.on_init(init(read_request("M:OUTTMP@I")), 2.0, 2.0)
    [refusal] = service.on_init(init(read_request("M:OUTTMP@I")), 2.0, 2.0)
    assert daqdata.decode_reply(refusal.body).error_number == DMQ_INVALID_REQUEST.error


def test_the_dmq_core_does_no_io() -> None:
    """Importing and using the DMQ core loads no I/O module (only the adapters may)."""
    code = (
        "import sys\n"
        "import numpy, acnet_proto.plans.lists, acnet_proto.sim.model, acnet_proto.status\n"
        "acnet_proto.status.known_statuses()\n"
        "before = set(sys.modules)\n"
        "from acnet_proto.services import dmq as dmq_jobs\n"
        "from acnet_proto.sim import dmq as dmq_server\n"
        "job = dmq_jobs.ReadJob(['M:OUTTMP'])\n"
        "job.receive('R.M:OUTTMP@I', b'')\n"
        "dmq_jobs.setting_sample('Z:ACLTST', 1.0, 0)\n"
        "print(' '.join(sorted(set(sys.modules) - before)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = {name.split(".")[0] for name in done.stdout.split()}
    banned = {
        "socket",
        "selectors",
        "asyncio",
        "trio",
        "threading",
        "ssl",
        "pika",
        "grpc",
        "gssapi",
    }
    assert not loaded & banned
    assert not any(name.startswith("acnet_proto.adapters") for name in done.stdout.split())


# ----------------------------------------------------- hostile deliveries (fuzz/fuzz_text.py)

#: a time no datetime holds: 2**62 ms is past the year 146 million
NO_DATE = 2**62


def test_a_sample_stamped_with_no_date_spoils_only_its_entry() -> None:
    job = ReadJob(["M:OUTTMP", "Z:ACLTST"])
    bad = sample(daqdata.DoubleSampleReply(value=1.0, time=NO_DATE))
    [(index, reading)] = job.receive("R.M:OUTTMP@I", bad)
    assert index == 0 and reading.status.name == "ACNET_RPLYPACK" and reading.message is not None
    assert str(NO_DATE) in reading.message and "no date" in reading.message
    good = sample(daqdata.DoubleSampleReply(value=2.0, time=T))
    assert [(i, r.value) for i, r in job.receive("R.Z:ACLTST@I", good)] == [(1, 2.0)]
    assert job.done


def test_a_job_failure_stamped_with_no_date_still_ends_the_job() -> None:
    job = StreamJob(["M:OUTTMP@p,1000"])
    refusal = daqdata.ErrorSampleReply(facility_code=72, error_number=-99, time=NO_DATE)
    [(index, reading)] = job.receive("R", sample(refusal))
    assert job.failure == DMQ_SECURITY_VIOLATION
    assert index == 0 and reading.status.name == "ACNET_RPLYPACK"


def test_reading_from_sample_refuses_a_time_that_is_no_date() -> None:
    with pytest.raises(RemoteProtocolError, match=str(NO_DATE)):
        reading_from_sample(daqdata.DoubleSampleReply(value=1.0, time=NO_DATE), "M:OUTTMP")


def test_a_routing_key_that_is_not_utf8_is_nobodys_reply() -> None:
    # pika hands over a short string that is not UTF-8 as bytes
    data = sample(daqdata.DoubleSampleReply(value=1.0, time=T))
    read, stream = ReadJob(["M:OUTTMP"]), StreamJob(["M:OUTTMP@p,1000"])
    setting = SettingJob("Z:ACLTST.SETTING@N")
    for job in (read, stream, setting):
        assert job.receive(b"R.M:OUTTMP@I\xff", data, b"\xfe", now=4.0) == []
        assert job.heard_at == 4.0  # the server is still alive
    assert not read.done and not setting.confirmed


def test_a_correlation_id_that_is_not_utf8_is_not_the_inits() -> None:
    job = ReadJob(["M:OUTTMP"])
    job.init_message_id = "init-1"
    refusal = sample(daqdata.ErrorSampleReply(facility_code=72, error_number=-99, time=T))
    assert job.receive("R", refusal, correlation_id=b"init-1\xff") == []
    assert job.failure is None


def test_mic_body_takes_properties_pika_left_as_bytes() -> None:
    got = mic_body(b"body", b"m\xff", "c", None, b"\xfe", b"\x7f\0\0\1")
    assert got == b"body\x00m\xff\x00c\x00\x00\xfe\x00\x7f\0\0\1\x00"


def test_a_delivery_with_names_that_are_not_text_is_for_no_one() -> None:
    assert Delivery.received(b"amq.topic", b"\xff\xfe", b"", reply_to="x") is None
    assert Delivery.received("amq.topic", "I", b"", message_id=7) is None
    made = Delivery.received(b"amq.topic", b"I", b"body", None, reply_to=b"job-1")
    assert made == Delivery("amq.topic", "I", b"body", reply_to="job-1")
