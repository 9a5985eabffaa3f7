"""``acget`` (``acnet-proto get``): one line a device, units only on numbers, text/json/csv."""

from __future__ import annotations

import csv
import io
import json

import pytest

from acnet_proto.adapters.cli import main as cli
from acnet_proto.adapters.sim.dpm import SimServer
from tests.adapters.cli.installed import one_error_line, run, where


def test_units_follow_numbers_only(sim: SimServer, capsys: pytest.CaptureFixture[str]) -> None:
    drfs = [
        "M:OUTTMP",
        "Z:ACLTS1[0:1]",
        "Z:STRTST",
        "Z:RAWTST",
        "Z:ACLTST.STATUS",
        "Z:ACLTST.ANALOG",
    ]
    assert cli.acget_main([*drfs, *where(sim)]) == 0
    lines = dict(line.split(" ", 1) for line in capsys.readouterr().out.splitlines())
    assert lines["M:OUTTMP"].endswith(" DegF")
    assert lines["Z:ACLTS1[0:1]"].startswith("[") and lines["Z:ACLTS1[0:1]"].endswith("] mm")
    assert lines["Z:STRTST"] == "the quick brown fox"
    assert lines["Z:RAWTST"] == "00112233445566778899aabbccddeeff"
    assert lines["Z:ACLTST.STATUS"] == "on=True ready=True positive=True ramp=False"
    assert lines["Z:ACLTST.ANALOG"].startswith("minimum=0.0 maximum=100.0 ")
    assert not lines["Z:ACLTST.ANALOG"].endswith("blip")


def test_json_lines(sim: SimServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        cli.acget_main(["--format", "json", "M:OUTTMP", "Z:STRTST", "Z:NOTFND", *where(sim)]) == 1
    )
    temp, text, missing = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert temp["ok"] and isinstance(temp["value"], float) and temp["units"] == "DegF"
    assert text == {**text, "value": "the quick brown fox", "units": None, "error": None}
    assert missing["ok"] is False and missing["value"] is None
    assert missing["error"].startswith("DPM_PEND") and "check the device name" in missing["error"]


def test_csv_with_a_header(sim: SimServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.acget_main(["--format", "csv", "Z:ACLTS1[0:1]", "Z:NOTFND", *where(sim)]) == 1
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [row["drf"] for row in rows] == ["Z:ACLTS1[0:1]", "Z:NOTFND"]
    assert rows[0]["units"] == "mm" and rows[0]["value"].startswith("[") and not rows[0]["error"]
    assert rows[1]["value"] == "" and rows[1]["error"].startswith("DPM_PEND")


def test_what_arrived_is_printed_when_others_time_out(sim: SimServer) -> None:
    result = run("acget", "--timeout", "1", "M:OUTTMP", "M:OUTTMP@p,100000", *where(sim))
    line = one_error_line(result, "acget", 1)
    assert "timed out" in line and "1 of 2 readings arrived" in line and "--timeout" in line
    arrived, missing = result.stdout.splitlines()
    assert arrived.startswith("M:OUTTMP ") and arrived.endswith(" DegF")
    assert missing.startswith("M:OUTTMP@p,100000 ERROR ACNET_REQTMO")


def test_the_control_property_cannot_be_read(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.acget_main(["Z&ACLTST"]) == 2
    assert "CONTROL" in capsys.readouterr().err


@pytest.mark.parametrize("backend", ["grpc", "acl"])
def test_other_backends_in_process(backend: str, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("grpc" if backend == "grpc" else "requests")
    assert cli.acget_main(["-b", backend, "--sim", "M:OUTTMP", "Z:STRTST"]) == 0
    temp, text = capsys.readouterr().out.splitlines()
    assert temp.startswith("M:OUTTMP ") and text == "Z:STRTST the quick brown fox"
