"""``acput`` (``acnet-proto put``): the SETTING before and after, text, commands, pairs, --verify.

Settings go through a real KDC (the ``kdc`` fixture: this process and its
children hold a ticket for operator) to a simulator holding its keytab.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

import pytest

from acnet_proto.adapters.cli import main as cli
from acnet_proto.adapters.sim.dpm import SimServer
from tests.adapters.cli.installed import one_error_line, run, where

pytestmark = pytest.mark.integration


@pytest.fixture
def server(kdc: object) -> Iterator[SimServer]:
    """A fresh simulator taking settings (the writes of one test do not leak into the next)."""
    with SimServer.in_thread(keytab=kdc.keytab) as sim:  # type: ignore[attr-defined]
        yield sim


def test_old_and_new_are_the_setting_not_the_reading(server: SimServer) -> None:
    # Z:ACLTST's reading wobbles around its setting: only the setting reads back exactly
    result = run("acput", "Z:ACLTST", "47.5", *where(server))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["Old : Z:ACLTST 45.0 blip", "New : Z:ACLTST 47.5 blip"]
    assert result.stderr == ""


def test_several_pairs_text_arrays_and_commands(server: SimServer) -> None:
    result = run(
        "acput", "Z:STRTST", "123", "Z:ACLTS1[0:1]", "1,2", "Z|ACLTST", "OFF", *where(server)
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "Old : Z:STRTST the quick brown fox",
        "New : Z:STRTST 123",  # text stays text
        "Old : Z:ACLTS1[0:1] [0.0, 1.5] mm",
        "New : Z:ACLTS1[0:1] [1.0, 2.0] mm",
        "Old : Z|ACLTST on=True ready=True positive=True ramp=False",
        "New : Z|ACLTST on=False ready=True positive=True ramp=False",
    ]


def test_verify_reads_back_the_setting_and_the_status_bit(server: SimServer) -> None:
    result = run("acput", "--verify", "Z:ACLTST", "-1.5e-3", "Z&ACLTST", "off", *where(server))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1::2] == [
        "New : Z:ACLTST -0.0015 blip (verified)",
        "New : Z&ACLTST on=False ready=True positive=True ramp=False (verified)",
    ]


def test_a_refused_setting_is_exit_1_and_says_why(
    server: SimServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.acput_main(["Z:ACLTST", "12", "G:AMANDA", "3", *where(server)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == "New : Z:ACLTST 12.0 blip"
    assert lines[3].startswith("New : G:AMANDA REFUSED DPM_PRIV")


def test_words_for_a_numeric_device_are_a_usage_error_and_nothing_is_set(
    server: SimServer,
) -> None:
    line = one_error_line(
        run("acput", "Z:ACLTST", "1", "Z:ACLTST", "on", *where(server)), "acput", 2
    )
    assert "'on' is not a number" in line and "acput Z:ACLTST.CONTROL on" in line
    assert server.model.resolve("Z_ACLTST").reply(1, 0.0).data == 45.0  # the first pair waited


def test_json_and_csv(server: SimServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.acput_main(["--format", "json", "Z:ACLTST", "12", *where(server)]) == 0
    (record,) = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert record == {"drf": "Z:ACLTST", "ok": True, "old": 45.0, "new": 12.0, "units": "blip",
                      "verified": None, "error": None}  # fmt: skip
    assert cli.acput_main(["--format", "csv", "--verify", "Z:STRTST", "x", *where(server)]) == 0
    (row,) = csv.DictReader(io.StringIO(capsys.readouterr().out))
    assert row == {"drf": "Z:STRTST", "old": "the quick brown fox", "new": "x", "units": "",
                   "ok": "True", "verified": "True", "error": ""}  # fmt: skip


def test_without_a_ticket_says_kinit(server: SimServer) -> None:
    result = run("acput", "Z:ACLTST", "1", *where(server), env={"KRB5CCNAME": "FILE:/nonexistent"})
    line = one_error_line(result, "acput", 2)
    assert "kinit" in line


def test_grpc_in_process_with_a_token(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("jwt")
    assert cli.acput_main(["-b", "grpc", "--sim", "Z:ACLTST", "3", "Z:STRTST", "abc"]) == 0
    assert capsys.readouterr().out.splitlines()[1::2] == [
        "New : Z:ACLTST 3.0",
        "New : Z:STRTST abc",
    ]


def test_sim_takes_settings_through_a_throwaway_kdc(kdc: object) -> None:
    """``--sim`` runs a KDC of its own in-process (``kdc`` only says krb5kdc is installed)."""
    result = run("acput", "--sim", "Z:ACLTST", "47.5")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["Old : Z:ACLTST 45.0 blip", "New : Z:ACLTST 47.5 blip"]
