"""One CLI per venv: the scripts are acnet-proto's, and ``acnet-proto get`` is ``acget``.

pacsys (installed for the interop tests) ships acget, acput, acmonitor and
acinfo too; whichever package was installed last owns them. ``./dev.sh
setup`` puts the project's back.
"""

from __future__ import annotations

import pytest

from acnet_proto.adapters.sim.dpm import SimServer
from tests.adapters.cli.installed import BIN, one_error_line, run, where

SCRIPTS = ["acnet-proto", "acget", "acput", "acmonitor", "acinfo"]
FIX = f"run ./dev.sh setup (or {BIN / 'python'} -m pip install --no-deps -e .)"


@pytest.mark.parametrize("name", SCRIPTS)
def test_the_venv_runs_the_projects_tools(name: str) -> None:
    script = BIN / name
    assert script.is_file(), f"{script} is missing: {FIX}"
    text = script.read_text(errors="replace")
    assert "acnet_proto.adapters.cli" in text, (
        f"{script} is not acnet-proto's (pacsys installs one of that name too, and the last "
        f"package installed wins): {FIX}"
    )


@pytest.mark.parametrize("tool", ["get", "info"])
def test_acnet_proto_subcommands_are_the_ac_tools(tool: str, sim: SimServer) -> None:
    canonical = run("acnet-proto", tool, "M:OUTTMP", "--format", "json", *where(sim))
    short = run(f"ac{tool}", "M:OUTTMP", "--format", "json", *where(sim))
    assert canonical.returncode == short.returncode == 0, canonical.stderr + short.stderr
    assert canonical.stdout.count("\n") == short.stdout.count("\n") == 1
    assert canonical.stdout.split('"value"')[0] == short.stdout.split('"value"')[0]


def test_subcommand_errors_name_the_subcommand() -> None:
    line = one_error_line(run("acnet-proto", "put", "Z:ACLTST", "nan"), "acnet-proto put", 2)
    assert "'nan'" in line
