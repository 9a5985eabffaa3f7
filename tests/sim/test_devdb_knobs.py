"""DevDB's ``is_knobbable``: a settable single value is a knob; a ramp card's table is not."""

from __future__ import annotations

import pytest

from acnet_proto.sim import DeviceModel
from acnet_proto.sim.devdb import info_entry

RAMP_CARDS = ["B:HS23T", "B:QS23T", "R:QT606T", "R:S202T", "R:SC319T", "R:H626T", "Z:ACLTS8"]


@pytest.fixture(scope="module")
def model() -> DeviceModel:
    return DeviceModel.default()


@pytest.mark.parametrize("name", RAMP_CARDS)
def test_a_ramp_cards_setting_is_not_a_knob(model: DeviceModel, name: str) -> None:
    device = model.device(name)
    assert device is not None and device.ramp is not None and device.settable
    info = info_entry(model, name).device
    assert info.HasField("setting") and not info.setting.is_knobbable


def test_a_settable_scalar_is_a_knob(model: DeviceModel) -> None:
    info = info_entry(model, "Z:ACLTST").device
    assert info.setting.is_knobbable and not info.reading.is_knobbable
