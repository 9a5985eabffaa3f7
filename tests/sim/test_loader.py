"""The model file's value keys, extending the built-in model, and the page's example device."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from acnet_proto.sim import DeviceModel, DeviceModelError
from acnet_proto.sim.scaling import RawType
from tests.support import ROOT

BASE = '[[device]]\nname = "Z:A"\ndi = 1\ndescription = "a"\n'
BAD_VALUE_KEYS = [
    (BASE + 'raw = "int12"\n', "device Z:A: raw 'int12' is not one of"),
    (BASE + 'raw = "int16"\nvalue = 40000\n', "device Z:A: 'value': 40000"),
    (BASE + "primary = { divisor = 0 }\n", "device Z:A.primary: 'divisor' must not be 0"),
    (BASE + "primary = { gain = 2 }\n", "device Z:A.primary: unknown key(s) ['gain']"),
    (BASE + "common = { c2 = 0 }\n", "device Z:A.common: 'c2' must not be 0"),
    (BASE + 'common = { c1 = "x" }\n', "device Z:A.common: 'c1' must be int or float"),
    (BASE + "min = 5\nmax = 1\n", "device Z:A: 'min' 5.0 is above 'max' 1.0"),
    (BASE + "value = 7\nmax = 1\n", "device Z:A: 'value' is outside 'min'..'max'"),
    (BASE + "min = nan\n", "device Z:A: 'min' must be a finite number"),
    (BASE + "update_period = -1\n", "device Z:A: 'update_period' must be 0 or more"),
    (BASE + 'kind = "text"\nraw = "int16"\n', "device Z:A: ['raw'] are for numeric devices"),
    (BASE + "ramp = { slots = 0 }\n", "device Z:A.ramp: 'slots' must be a positive number"),
    (BASE + "ramp = { depth = 1 }\n", "device Z:A.ramp: unknown key(s) ['depth']"),
    (
        BASE + "analog = { tries_needed = 300 }\n",
        "device Z:A.analog: 'tries_needed' must be in 0..255",
    ),
    (BASE + "digital = { ftd = 70000 }\n", "device Z:A.digital: 'ftd' must be in 0..65535"),
    (BASE + 'raw = "int16"\nanalog = { max = 1e6 }\n', "device Z:A: 'analog': "),
    ('builtin = "yes"\n', "top level: 'builtin' must be bool"),
]


@pytest.mark.parametrize(("text", "message"), BAD_VALUE_KEYS)
def test_bad_value_keys_name_the_file_device_and_key(text: str, message: str) -> None:
    with pytest.raises(DeviceModelError) as info:
        DeviceModel.from_toml(text, source="test.toml")
    assert str(info.value).startswith("test.toml: ")
    assert message in str(info.value)


def test_a_file_extends_the_built_in_model_and_replaces_by_name(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(
        BASE + '[[device]]\nname = "M:OUTTMP"\ndi = 27235\ndescription = "mine"\n'
        '[clock.events]\n"8f" = 0.25\n'
    )
    model = DeviceModel.load(path)
    assert model.device("Z:A").description == "a"
    assert model.device("M:OUTTMP").description == "mine"
    assert model.device("M:OUTTMP").scaling.raw is RawType.FLOAT32  # nothing of the built-in kept
    assert model.device("Z:ACLTST") is not None and model.device("Z:SIM0001") is not None
    assert model.clock_period(0x8F) == 0.25 and model.clock_period(0x02) < 0.1


def test_builtin_false_makes_a_file_stand_alone(tmp_path: Path) -> None:
    path = tmp_path / "alone.toml"
    path.write_text("builtin = false\n" + BASE)
    model = DeviceModel.load(path)
    assert model.device("Z:A") is not None and model.device("M:OUTTMP") is None


def test_a_clash_with_a_built_in_device_names_the_file_and_both_devices(tmp_path: Path) -> None:
    path = tmp_path / "clash.toml"
    path.write_text(BASE.replace("di = 1", "di = 27235"))
    with pytest.raises(DeviceModelError, match=r"clash.toml: device Z:A: di 27235 .*M:OUTTMP"):
        DeviceModel.load(path)


def example_text() -> str:
    page = (ROOT / "docs" / "simulator.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- model-example -->\n```toml\n(.*?)```", page, re.DOTALL)
    assert found is not None, "docs/simulator.md lost its example device"
    return found.group(1)


def test_the_pages_example_uses_every_device_key() -> None:
    from acnet_proto.sim import loader

    text = example_text()
    device_keys = {k for k in loader._DEVICE_KEYS}
    used = set(re.findall(r"^(\w+) =", text.split("[[family]]")[0], re.MULTILINE))
    assert device_keys <= used, sorted(device_keys - used)


def test_the_pages_example_device_serves() -> None:
    model = DeviceModel.from_toml(example_text(), "docs/simulator.md")
    assert model.device("Z:ACLTST") is None  # builtin = false
    now = 1763769600.0
    raw = model.resolve("Z:EXAMPL.RAW").reply(1, now)
    scaled = model.resolve("Z:EXAMPL").reply(1, now)
    assert model.device("Z:EXAMPL").scaling.decode_all(raw.data) == list(scaled.data)
    assert model.resolve("Z:EXAMPL.ANALOG{0:20}.RAW").reply(1, now).data[11] == 2
    assert model.resolve("Z:EXAMPL.SETTING{0:256}.RAW").reply(1, now).data == bytes(256)
    assert model.resolve("Z|EXAMPL").reply(1, now).on is True
    assert list(model.resolve("Z|EXAMPL.BIT_NAMES").reply(1, now).data[:2]) == ["On", "Ready"]
    assert model.apply_setting(model.resolve("Z_EXAMPL[0]"), 60.0) != 0  # beyond max = 50
    assert model.device("Z:EX3").description == "example 3"
