"""docs/cli.md's error examples are what the installed tools print, with that exit status.

The block after ``<!-- cli-errors -->`` holds examples of the form::

    $ COMMAND
    a line it prints (stdout or stderr, in any order)
    [exit N]

Each runs against the simulator (``ACNET_DPM_HOST``/``ACNET_DPM_PORT``), in
a directory of its own.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from acnet_proto.adapters.sim.dpm import SimServer
from tests.adapters.cli.installed import run
from tests.support import ROOT

PAGE = (ROOT / "docs" / "cli.md").read_text()
BLOCK = re.search(r"<!-- cli-errors -->\n```console\n(.*?)^```", PAGE, re.DOTALL | re.MULTILINE)
EXAMPLE = re.compile(r"^\$ ([^\n]+)\n(.*?)^\[exit (\d+)\]$", re.DOTALL | re.MULTILINE)


def _examples() -> list[tuple[str, list[str], int]]:
    assert BLOCK is not None, "docs/cli.md has no <!-- cli-errors --> console block"
    found = [
        (command, output.splitlines(), int(code))
        for command, output, code in EXAMPLE.findall(BLOCK.group(1))
    ]
    assert len(found) >= 5
    return found


@pytest.mark.parametrize(("command", "lines", "code"), _examples(), ids=lambda x: str(x)[:40])
def test_the_page_shows_what_the_tool_prints(
    command: str,
    lines: list[str],
    code: int,
    sim: SimServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    env = {"ACNET_DPM_HOST": sim.host, "ACNET_DPM_PORT": str(sim.port)}
    result = run(*shlex.split(command), env=env)
    printed = result.stdout.splitlines() + result.stderr.splitlines()
    assert sorted(printed) == sorted(lines), f"{command}: it printed\n" + "\n".join(printed)
    assert result.returncode == code, result.stderr
