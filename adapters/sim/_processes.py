"""Starting and stopping helper daemons (KDC, brokers) for demos and tests.

Not part of the protocol core: these run programs.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path

from acnet_proto.errors import AcnetProtoError

# Debian puts daemons in /usr/sbin, which is not on a normal user's PATH.
_EXTRA_DIRS = ("/usr/sbin", "/sbin", "/usr/local/sbin")


class ServerUnavailable(AcnetProtoError):
    """A program a helper server needs is not installed."""


def find_program(name: str) -> str:
    path = os.pathsep.join([os.environ.get("PATH", ""), *_EXTRA_DIRS])
    found = shutil.which(name, path=path)
    if found is None:
        raise ServerUnavailable(
            f"{name} not found: run scripts/install-system-deps to install the test servers"
        )
    return found


def free_port(udp_too: bool = False) -> int:
    """A loopback port free now (racy, but only against other local tests)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port: int = tcp.getsockname()[1]
            if not udp_too:
                return port
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free loopback port found")


def die_with_parent() -> None:
    """preexec_fn: if pytest is killed outright, its servers must not linger."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGTERM)


def stop_process_group(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM the whole group (servers fork helpers), then SIGKILL whatever is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=timeout)
    # Also sweeps helpers that outlive a leader which exited on SIGTERM.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=5)


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
