"""The DMQ server core reports each refusal once, with its kind, status, job and reason.

The in-memory acceptor and message builders are tests/services/test_dmq.py's (a SHA-256
"MIC", the token b"operator").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest

from acnet_proto.pc import daqdata
from acnet_proto.services.dmq import (
    DMQ_INVALID_DATA_TYPE,
    DMQ_INVALID_REQUEST,
    DMQ_LOGIN_REQUIRED,
    DMQ_OK,
    DMQ_SECURITY_VIOLATION,
    Publish,
)
from acnet_proto.sim import DeviceModel, SettingsPolicy
from acnet_proto.sim.dmq import Delivery, DMQService, Refused
from acnet_proto.sim.schedule import ClockEvents
from acnet_proto.status import Status
from tests.services.test_dmq import HOST, Acceptor, init, read_request, sample, signed

SETTING_DRF = "Z:ACLTST.SETTING@N"


def make(**options: object) -> tuple[DMQService, list[Refused]]:
    """A service whose refusals are collected, oldest first."""
    model = DeviceModel.default()
    seen: list[Refused] = []
    service = DMQService(model, ClockEvents(model, 0.0), Acceptor, refused=seen.append, **options)  # type: ignore[arg-type]
    return service, seen


def error_status(body: bytes) -> Status:
    error = daqdata.decode_reply(body)
    assert isinstance(error, daqdata.ErrorSampleReply)
    return Status(error.facility_code, error.error_number)


def answered(actions: Sequence[object]) -> Status:
    [reply] = [a for a in actions if isinstance(a, Publish)]
    return error_status(reply.body)


def setting_job(service: DMQService) -> None:
    body = daqdata.encode(daqdata.SettingRequestRequest(data_request=[SETTING_DRF]))
    service.on_init(init(body), 0.0, 0.0)


def setting(key: str, value: bytes, tamper: bool = False) -> Delivery:
    delivery = Delivery(
        "client-ex", key, value, message_id="s1", app_id="test", headers={"host-address": HOST}
    )
    return signed(delivery, tamper)


@pytest.mark.parametrize(
    ("delivery", "kind", "status"),
    [
        (init(read_request("M:OUTTMP@I"), token=b""), "no gss-token", DMQ_LOGIN_REQUIRED),
        (init(read_request("M:OUTTMP@I"), token=b"x"), "gss-token refused", DMQ_SECURITY_VIOLATION),
        (
            init(read_request("M:OUTTMP@I"), tamper=True),
            "bad INIT signature",
            DMQ_SECURITY_VIOLATION,
        ),
        (init(b"SDD\x02junk"), "invalid INIT", DMQ_INVALID_REQUEST),
        (init(read_request()), "invalid INIT", DMQ_INVALID_REQUEST),
        (
            init(read_request("M:OUTTMP@I" + "x" * 250)),
            "DRF too long to route",
            DMQ_INVALID_REQUEST,
        ),
    ],
    ids=["no-token", "bad-token", "bad-signature", "undecodable", "no-drfs", "too-long"],
)
def test_a_refused_init_is_reported_once_with_its_kind(
    delivery: Delivery, kind: str, status: Status
) -> None:
    service, seen = make()
    assert answered(service.on_init(delivery, 0.0, 0.0)) == status
    [refused] = seen
    assert (refused.kind, refused.status, refused.exchange) == (kind, status, "client-ex")
    assert refused.label == f"{kind} ({status.name} {status.error})"
    assert refused.peer == "test on client-ex"  # the app id the client gave, and its exchange
    assert refused.why == service.refusals[-1]


def test_a_second_init_on_a_running_jobs_exchange_is_reported() -> None:
    service, seen = make()
    service.on_init(init(read_request("M:OUTTMP@p,1000")), 0.0, 0.0)
    assert seen == []
    service.on_init(init(read_request("M:OUTTMP@I")), 0.0, 0.0)
    [refused] = seen
    assert refused.kind == "second INIT on an exchange" and refused.status == DMQ_INVALID_REQUEST


def test_an_init_with_nowhere_to_answer_is_reported_with_no_status() -> None:
    service, seen = make()
    no_reply_to = replace(init(read_request("M:OUTTMP@I")), reply_to=None)
    assert service.on_init(no_reply_to, 0.0, 0.0) == []
    [refused] = seen
    assert (refused.kind, refused.status, refused.peer) == ("INIT without reply_to", None, None)
    assert refused.label == "INIT without reply_to"


@pytest.mark.parametrize("drf", ["Z:NOTFND@I", "M:OUTTMP.SETTING@I"])
def test_a_drf_the_model_refuses_is_reported_with_the_status_sent(drf: str) -> None:
    service, seen = make()
    actions = service.on_init(init(read_request("M:OUTTMP@I", drf)), 0.0, 0.0)
    replies = [a for a in actions if isinstance(a, Publish) and a.routing_key == f"R.{drf}"]
    [refused] = seen
    assert refused.kind == "DRF refused" and drf in refused.why
    assert refused.status == error_status(replies[-1].body)


def test_each_refused_setting_is_reported_with_its_reason() -> None:
    service, seen = make()
    setting_job(service)
    number = sample(daqdata.DoubleSampleReply(value=1.0, time=0))
    hostile = "S.Z:ACLTST.SETTING@N\x1b[31m"
    cases = [
        (setting(f"S.{SETTING_DRF}", number, tamper=True), "bad setting signature"),
        (setting(hostile, number), "setting routing key mismatch"),
        (setting(f"S.{SETTING_DRF}", b"SDD\x02junk"), "undecodable setting"),
        (
            setting(f"S.{SETTING_DRF}", sample(daqdata.BinarySampleReply(value=b"\0", time=0))),
            "setting of no settable type",
        ),
    ]
    for delivery, _ in cases:
        service.on_job_message(delivery, 1.0, 1.0)
    assert [r.kind for r in seen] == [kind for _, kind in cases]
    assert [r.status for r in seen] == [
        DMQ_SECURITY_VIOLATION,
        DMQ_INVALID_REQUEST,
        DMQ_INVALID_REQUEST,
        DMQ_INVALID_DATA_TYPE,
    ]
    assert repr(hostile) in seen[1].why  # the key as sent: the log shows it escaped
    assert all(r.peer == "test on client-ex" for r in seen)


def test_a_setting_the_policy_refuses_is_reported_naming_who_and_what() -> None:
    only_the_array = SettingsPolicy.from_toml(
        'default_roles = ["t"]\n[roles.t]\nallow = ["Z:ACLTS1"]\n'
    )
    service, seen = make(policy=only_the_array)
    setting_job(service)
    number = sample(daqdata.DoubleSampleReply(value=3.0, time=0))
    status = answered(service.on_job_message(setting(f"S.{SETTING_DRF}", number), 1.0, 1.0))
    [refused] = seen
    assert refused.kind == "setting not allowed" and refused.status == status
    assert status.name == "DPM_PRIV" and refused.why == "operator@FNAL.GOV may not set Z:ACLTST"


def test_a_setting_the_model_refuses_is_reported() -> None:
    service, seen = make()
    setting_job(service)
    text = sample(daqdata.StringSampleReply(value="not a number", time=0))
    status = answered(service.on_job_message(setting(f"S.{SETTING_DRF}", text), 1.0, 1.0))
    [refused] = seen
    assert refused.kind == "setting refused by the model" and refused.status == status
    assert SETTING_DRF in refused.why and str(status.name) in refused.why


def test_an_accepted_setting_reports_nothing() -> None:
    service, seen = make()
    setting_job(service)
    number = sample(daqdata.DoubleSampleReply(value=3.0, time=0))
    accepted = service.on_job_message(setting(f"S.{SETTING_DRF}", number), 1.0, 1.0)
    assert answered(accepted) == DMQ_OK
    assert seen == []


def test_an_idle_job_disposed_is_reported() -> None:
    service, seen = make(idle_timeout=1.0)
    service.on_init(init(read_request("M:OUTTMP@p,1000")), 0.0, 0.0)
    service.tick(1.0, 1.0)
    [refused] = seen
    assert (refused.kind, refused.status, refused.exchange) == (
        "idle job disposed",
        None,
        "client-ex",
    )
    assert "idle" in refused.why
