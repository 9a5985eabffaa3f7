"""The loader refuses values the model could not serve, naming the file, the device and the key:
numbers that are not finite, alarm blocks on data with no scaled value, ramps whose value
words would not be int16."""

from __future__ import annotations

import pytest

from acnet_proto.sim import DeviceModel, DeviceModelError

BASE = '[[device]]\nname = "Z:A"\ndi = 1\ndescription = "a"\n'


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ("amplitude = nan", "device Z:A: 'amplitude' must be a finite number, got nan"),
        ("amplitude = inf", "device Z:A: 'amplitude' must be a finite number, got inf"),
        ("phase = -inf", "device Z:A: 'phase' must be a finite number, got -inf"),
        ("phase = nan", "device Z:A: 'phase' must be a finite number, got nan"),
        ("analog = { min = nan, max = 1 }", "device Z:A.analog: 'min' must be a finite number"),
        ("analog = { min = 0, max = inf }", "device Z:A.analog: 'max' must be a finite number"),
        ("value = nan", "device Z:A: 'value': nan is not a finite value"),
        ('kind = "array"\nvalue = [1.0, inf]', "device Z:A: 'value': inf is not a finite value"),
    ],
)
def test_a_number_that_is_not_finite_names_file_device_and_key(keys: str, message: str) -> None:
    with pytest.raises(DeviceModelError) as raised:
        DeviceModel.from_toml(BASE + keys + "\n", "lab.toml")
    assert str(raised.value).startswith(f"lab.toml: {message}")


def test_a_family_value_or_step_that_is_not_finite_is_refused() -> None:
    family = '[[family]]\nprefix = "Z:F"\ncount = 2\nfirst_di = 10\ndescription = "f"\n'
    for keys, key in (("value = nan", "value"), ("step = inf", "step")):
        with pytest.raises(DeviceModelError, match=f"family Z:F: '{key}' must be a finite"):
            DeviceModel.from_toml(family + keys + "\n", "f.toml")


@pytest.mark.parametrize("kind", ['kind = "text"', 'kind = "raw"\nlength = 4'])
def test_an_analog_alarm_on_data_with_no_scaled_value_is_refused(kind: str) -> None:
    with pytest.raises(DeviceModelError, match=r"device Z:A: \['analog'\] are for numeric"):
        DeviceModel.from_toml(BASE + kind + "\nanalog = { min = 0, max = 1 }\n", "x.toml")


@pytest.mark.parametrize("raw", ["float32", "int32", "uint16", "dec_f"])
def test_a_ramp_with_a_raw_type_other_than_int16_is_refused(raw: str) -> None:
    with pytest.raises(DeviceModelError, match=f"value words are int16.*not '{raw}'"):
        DeviceModel.from_toml(BASE + f'settable = true\nraw = "{raw}"\nramp = {{}}\n', "r.toml")


def test_a_ramp_with_int16_or_no_raw_type_loads() -> None:
    for raw in ('raw = "int16"\n', ""):
        model = DeviceModel.from_toml(BASE + f"settable = true\n{raw}ramp = {{ slots = 2 }}\n")
        device = model.device("Z:A")
        assert device is not None and device.ramp is not None and device.ramp.slots == 2
