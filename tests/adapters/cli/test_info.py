"""``acinfo`` (``acnet-proto info``): what a device has; -v also what it lacks; json and csv."""

from __future__ import annotations

import csv
import io
import json

import pytest

from acnet_proto.adapters.cli import main as cli
from acnet_proto.adapters.sim.dpm import SimServer
from tests.adapters.cli.installed import where


def test_the_properties_a_device_has(sim: SimServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.acinfo_main(["Z:STRTST", "M:OUTTMP@p,1000", *where(sim)]) == 0
    out = capsys.readouterr().out
    text, temperature = out.split("M:OUTTMP\n")
    assert text.splitlines() == [
        "Z:STRTST",
        "  description: string test device",
        "  device index: 140020",
        "  units: -",
        "  reading: the quick brown fox",
        "  setting: the quick brown fox",
    ]
    assert "  analog alarm: minimum=-20.0 maximum=110.0" in temperature
    assert "setting" not in temperature  # M:OUTTMP has none: not shown without -v


def test_verbose_shows_what_a_device_lacks(
    sim: SimServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.acinfo_main(["-v", "M:OUTTMP", *where(sim)]) == 0
    lines = capsys.readouterr().out.splitlines()
    setting = next(line for line in lines if line.startswith("  setting: "))
    assert "DBM_NOPROP" in setting and "[M:OUTTMP.SETTING@I at " in setting


def test_an_unknown_device_is_exit_1(sim: SimServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.acinfo_main(["Z:NOTFND", "M:OUTTMP", *where(sim)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("Z:NOTFND: DPM_PEND") and "\nM:OUTTMP\n" in out


def test_json_and_csv(sim: SimServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.acinfo_main(["--format", "json", "Z:ACLTST", *where(sim)]) == 0
    (info,) = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert info["device_index"] == 140013 and info["setting"]["units"] == "blip"
    assert info["status"]["value"]["on"] is True and info["status"]["units"] is None
    assert cli.acinfo_main(["--format", "csv", "M:OUTTMP", *where(sim)]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["property"] for r in rows] == [
        "description",
        "device index",
        "units",
        "reading",
        "analog alarm",
    ]


def test_other_backends_describe_what_they_can(capsys: pytest.CaptureFixture[str]) -> None:
    """ACL has no metadata and cannot read alarm blocks: what it lacks is not an error."""
    pytest.importorskip("requests")
    assert cli.acinfo_main(["-b", "acl", "--sim", "M:OUTTMP"]) == 0
    name, description, reading = capsys.readouterr().out.splitlines()
    assert (name, description) == ("M:OUTTMP", "  description: Outdoor temperature")
    assert reading.startswith("  reading: 41.")
