"""Recorded data is never the device: a setting through a ``<-LOGGER``/``<-FTP`` DRF is
refused, and the services that serve live values only refuse such a DRF instead of
answering it with the live value."""

from __future__ import annotations

import time

import pytest

from acnet_proto.pc import dpm
from acnet_proto.services.dmq import Publish
from acnet_proto.sim import DeviceModel, RequestRejected
from acnet_proto.status import Status
from tests.services.test_dmq import init, read_request
from tests.sim.test_dmq_refusals import error_status, make

RECORDED = ["Z:ACLTST.SETTING<-LOGGER:0:5", "Z:ACLTST.SETTING@p,100H<-FTP"]


def setting_of(model: DeviceModel) -> float:
    reply = model.resolve("Z:ACLTST.SETTING@I").reply(0, time.time())
    assert isinstance(reply, dpm.ScalarReply)
    return float(reply.data)


@pytest.mark.parametrize("drf", RECORDED)
def test_a_setting_through_a_recorded_drf_is_read_only(drf: str) -> None:
    model = DeviceModel.default()
    before = setting_of(model)
    status = model.apply_setting(model.resolve(drf), before + 12.5)
    assert Status.from_int(status).name == "DIO_READONLY"
    assert setting_of(model) == before  # the live device was left alone


def test_the_same_setting_through_the_live_drf_is_applied() -> None:
    model = DeviceModel.default()
    assert model.apply_setting(model.resolve("Z:ACLTST.SETTING"), 12.5) == 0
    assert setting_of(model) == 12.5


@pytest.mark.parametrize("drf", [*RECORDED, "Z:NOTFND<-LOGGER:0:5"])
def test_live_only_resolve_refuses_recorded_data(drf: str) -> None:
    model = DeviceModel.default()
    with pytest.raises(RequestRejected) as caught:
        model.resolve(drf, live_only=True)
    assert Status.from_int(caught.value.status).name == "DPM_BAD_REQUEST"
    assert "recorded data" in caught.value.reason and "through DPM" in caught.value.reason
    assert model.resolve("Z:ACLTST.SETTING", live_only=True).request.source is None


@pytest.mark.parametrize("drf", ["M:OUTTMP@I<-LOGGER:0:5000", "M:OUTTMP@p,100H<-FTP"])
def test_dmq_answers_a_recorded_drf_with_a_bad_request_error_sample(drf: str) -> None:
    service, seen = make()
    actions = service.on_init(init(read_request(drf)), 0.0, 0.0)
    replies = [a for a in actions if isinstance(a, Publish) and a.routing_key == f"R.{drf}"]
    assert replies and error_status(replies[-1].body).name == "DPM_BAD_REQUEST"
    [refused] = seen
    assert refused.kind == "DRF refused" and "recorded data" in refused.why
