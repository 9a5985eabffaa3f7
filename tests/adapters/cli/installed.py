"""Running the installed console scripts, as users run them, and checking their error lines."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from acnet_proto.adapters.sim.dpm import SimServer

#: the venv's scripts: acnet-proto, acget, acput, acmonitor, acinfo
BIN = Path(sys.executable).parent


def where(sim: SimServer) -> list[str]:
    return ["--host", sim.host, "--port", str(sim.port)]


def run(
    *command: str, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` (its first word a script of the venv) to the end; its output as text.

    No DPM is configured unless ``env`` says so: a tool that wrongly tried to
    connect fails with a configuration error instead of finding one.
    """
    environment = {k: v for k, v in os.environ.items() if not k.endswith("_DPM_HOST")}
    environment.update(env or {})
    return subprocess.run(
        [str(BIN / command[0]), *command[1:]],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment,
    )


def one_error_line(result: subprocess.CompletedProcess[str], prog: str, code: int) -> str:
    """The one line a failed command printed on stderr (asserting it failed with ``code``)."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert result.returncode == code, (result.returncode, result.stderr)
    assert len(lines) == 1, f"not one line on stderr: {result.stderr!r}"
    assert lines[0].startswith(f"{prog}: "), lines[0]
    return lines[0]
