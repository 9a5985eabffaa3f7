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
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from acnet_proto.errors import AcnetProtoError

# Debian puts daemons in /usr/sbin, which is not on a normal user's PATH.
_EXTRA_DIRS = ("/usr/sbin", "/sbin", "/usr/local/sbin")


class ServerUnavailable(AcnetProtoError):
    """A program a helper server needs is not installed: install it (the message names it)."""


class ServerStartFailed(AcnetProtoError):
    """A helper server is installed but did not start: it exited, or did not answer in time.

    The message names the server and ends with the tail of its log, which says why.
    """


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
    raise ServerStartFailed("no free loopback port for a helper server: free some ports")


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


def wait_ready(
    proc: subprocess.Popen[bytes],
    probe: Callable[[], str | None],
    logs: Sequence[Path],
    name: str,
    timeout: float,
) -> None:
    """Return once ``probe()`` says the server ``name`` that ``proc`` runs answers.

    ``probe`` returns None when the server answered, else why not; it is
    tried again every 0.2 s. :class:`ServerStartFailed`, ending with the
    tail of each of ``logs``, if ``proc`` exits first or ``timeout``
    seconds pass.
    """
    deadline = time.monotonic() + timeout
    why = "not probed"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            failure = f"{name} exited with {proc.returncode}"
            break
        answer = probe()
        if answer is None:
            return
        why = answer
        time.sleep(0.2)
    else:
        failure = f"{name} not answering after {timeout:g} s: {why}"
    tails = "\n".join(log_tail(log) for log in logs)
    raise ServerStartFailed(f"{failure}; its log ends:\n{tails}")
