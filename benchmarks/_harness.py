"""What the benchmarks share: the DPM servers in processes of their own, /proc
readings, the order contenders run in, the two event loops, the machine's
description, the targets' verdicts, and the report's last lines.

``codec.py`` takes only the machine's description and :func:`write_json`.
``latency.py``, ``stream.py`` and ``soak.py`` measure clients against a DPM
server in a separate process, so that its CPU work does not share the GIL
(or the interpreter) with the client being measured; the scripts read its
CPU time and memory from ``/proc``, like those of any other process. Linux
only. Two servers (:data:`SERVERS`):

- ``sim``: the simulator, ``python -m acnet_proto.adapters.cli.main sim --port 0``
  (:class:`SimProcess`): devices modelled, replies built per read;
- ``ref``: ``benchmarks/reference_server.py --port 0`` (:class:`ReferenceProcess`):
  prepared frames, a thread per connection, little CPU per reading, so that
  what is measured against it is the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import json
import os
import platform
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import Any, Self, TypeVar

import numpy as np
import trio

from acnet_proto.adapters.dpm.asyncio import AsyncioDPMBackend
from acnet_proto.adapters.dpm.trio import TrioDPMBackend

#: The clients the loopback benchmarks compare: acnet-proto's adapters (:data:`OURS`),
#: pacsys, and ``floor``, a bare socket that is no client library at all.
CONTENDERS = ("sync", "threaded", "asyncio", "trio", "pacsys", "floor")
OURS = ("sync", "threaded", "asyncio", "trio")

#: The servers a benchmark can run against: the simulator and the reference server.
SERVERS = ("sim", "ref")
SERVER_NAMES = {"sim": "simulator", "ref": "reference server"}

_BANNER = re.compile(r"(?:simulated|reference) DPM on (\S+):(\d+) ")
_REFERENCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference_server.py")
_STARTUP_TIMEOUT = 20.0
_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")
_T = TypeVar("_T")


class ServerProcess:
    """A DPM server in a child process, run as ``args``; ``with`` starts and stops it.

    ``host``/``port`` are parsed from the banner it prints once it listens.
    """

    def __init__(self, args: Sequence[str]) -> None:
        self.args = list(args)
        self.host = ""
        self.port = 0
        self._proc: subprocess.Popen[str] | None = None

    @property
    def pid(self) -> int:
        assert self._proc is not None, "the server is not running"
        return self._proc.pid

    def __enter__(self) -> Self:
        self._proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, text=True)
        out = self._proc.stdout
        assert out is not None
        banner: list[str] = []
        # readline() has no timeout: read the banner in a thread so a server that
        # never starts is an error, not a hang
        reader = threading.Thread(target=lambda: banner.append(out.readline()))
        reader.start()
        reader.join(_STARTUP_TIMEOUT)
        match = _BANNER.search(banner[0]) if banner else None
        if match is None:
            self.__exit__()
            got = repr(banner[0]) if banner else "nothing"
            raise RuntimeError(
                f"{' '.join(self.args[1:])[:120]} did not print its banner within "
                f"{_STARTUP_TIMEOUT} s (got {got})"
            )
        self.host, self.port = match.group(1), int(match.group(2))
        return self

    def __exit__(self, *exc: object) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        # SIGINT is the servers' Ctrl-C: they close their clients and exit cleanly
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def rss_bytes(self) -> int:
        return rss_bytes(self.pid)


class SimProcess(ServerProcess):
    """``acnet-proto sim --port 0 [extra_args]``: the simulator."""

    def __init__(self, extra_args: Sequence[str] = ()) -> None:
        cli = [sys.executable, "-m", "acnet_proto.adapters.cli.main"]
        super().__init__([*cli, "sim", "--port", "0", *extra_args])


class ReferenceProcess(ServerProcess):
    """``benchmarks/reference_server.py --port 0``: prepared frames, little CPU per reading."""

    def __init__(self) -> None:
        super().__init__([sys.executable, _REFERENCE, "--port", "0"])


def server_process(name: str) -> ServerProcess:
    """The server ``name`` of :data:`SERVERS`, not started yet."""
    if name == "sim":
        return SimProcess()
    if name == "ref":
        return ReferenceProcess()
    raise ValueError(f"unknown server {name!r}")


def verdict(measured: float | None, bound: float) -> str:
    """``PASS`` if ``measured`` is at most ``bound``, ``MISS`` if above, ``—`` if not measured."""
    if measured is None:
        return "—"
    return "PASS" if measured <= bound else "MISS"


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process ``pid`` (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def rss_bytes(pid: int) -> int:
    """Resident set size of process ``pid``, in bytes."""
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * _PAGE


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


def describe_machine() -> dict[str, Any]:
    """The interpreter, the platform, the processor and the versions of what is compared."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "processor": _cpu_model() or platform.processor(),
        "cpus": os.cpu_count(),
        "numpy": np.__version__,
        "pacsys": importlib.metadata.version("pacsys"),
        "acnet_proto": importlib.metadata.version("acnet-proto"),
    }


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def machine() -> dict[str, Any]:
    """:func:`describe_machine`, plus trio's version and the load (for the loopback runs)."""
    info = describe_machine()
    info["trio"] = importlib.metadata.version("trio")
    info["load_average"] = load_average()
    return info


def percentile(ordered: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of sorted ``ordered``, nearest-rank."""
    if not ordered:
        raise ValueError("no samples")
    rank = max(1, -(-len(ordered) * q // 100))  # ceil, at least the first
    return ordered[int(rank) - 1]


def print_machine(info: dict[str, Any]) -> None:
    print(
        f"python {info['python']} ({info['implementation']}), pacsys {info['pacsys']}, "
        f"acnet-proto {info['acnet_proto']}, trio {info['trio']}"
    )
    load = ", ".join(f"{x:.2f}" for x in info["load_average"])
    print(f"{info['processor']}, {info['cpus']} CPUs, {info['platform']}; load average {load}")


def rotations(contenders: Sequence[str], rounds: int) -> Iterator[tuple[int, list[str]]]:
    """``(round, order)`` for each round: the contenders rotated by one more each round,
    so that slow drifts of the machine's load fall on all of them."""
    for r in range(rounds):
        shift = r % len(contenders)
        yield r, [*contenders[shift:], *contenders[:shift]]


def take_turns(
    contenders: Sequence[str], rounds: int, run: Callable[[str, int], _T], label: str
) -> tuple[dict[str, list[_T]], dict[str, str]]:
    """``run(who, round)`` for every contender in every round, in :func:`rotations` order.

    Returns each contender's results, and the contenders that failed (their
    error): one whose run raises is left out of the later rounds and the
    others go on, so that one broken client costs its own rows, not the run.
    """
    results: dict[str, list[_T]] = {who: [] for who in contenders}
    failed: dict[str, str] = {}
    for r, order in rotations(contenders, rounds):
        for who in order:
            if who in failed:
                continue
            try:
                results[who].append(run(who, r))
            except Exception as exc:  # reported, and the run goes on
                failed[who] = error_text(exc)
                print(f"  {label}: {who} FAILED: {failed[who]}", file=sys.stderr)
        print(f"  {label}: round {r + 1}/{rounds} done", file=sys.stderr)
    return {who: got for who, got in results.items() if who not in failed}, failed


def error_text(exc: BaseException, limit: int = 300) -> str:
    """``exc``'s type and message, cut at ``limit`` characters (some name every DRF)."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def run_async(who: str, main: Callable[[Any], Coroutine[Any, Any, _T]]) -> _T:
    """``main(backend_class)`` in ``who``'s event loop: ``"asyncio"`` runs it with
    ``AsyncioDPMBackend``, ``"trio"`` with ``TrioDPMBackend``."""
    if who == "asyncio":
        return asyncio.run(main(AsyncioDPMBackend))
    if who == "trio":
        return trio.run(main, TrioDPMBackend)
    raise ValueError(f"unknown contender {who!r}")


def print_load_after() -> tuple[float, float, float]:
    """Print the load average now, at the end of a run, and return it."""
    load = load_average()
    print("load average after: " + ", ".join(f"{x:.2f}" for x in load))
    return load


def write_json(path: str, doc: dict[str, Any]) -> None:
    """``doc`` as indented JSON in the file ``path``."""
    with open(path, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
