"""The lab suite's servers: the lab's own when ``ACNET_LAB_*`` names them, else ``acnet-proto sim``.

Environment (see docs/lab-suite.md):

==================  ==========================================================
``ACNET_LAB_DPM``   ``host:port`` of DPM/TCP
``ACNET_LAB_GRPC``  ``host:port`` of DPM over gRPC
``ACNET_LAB_DEVDB`` ``host:port`` of DevDB
``ACNET_LAB_ACL``   the ACL CGI's URL (``https://.../cgi-bin/acl.pl``)
``ACNET_LAB_ACL_CA`` a CA bundle for its certificate (default: the system's)
``ACNET_LAB_DMQ``   ``host:port`` of the DMQ broker
``ACNET_LAB_ROLE``  the settings role (default ``testing``)
``ACNET_LAB_WRITE`` ``1`` to let the suite set the lab's test devices
==================  ==========================================================

When one of the endpoint variables is set the suite runs against the lab:
a service whose variable is unset is skipped, Kerberos is the user's own
ticket, and settings are sent only with ``ACNET_LAB_WRITE=1``. When none is
set, each test module starts ``acnet-proto sim`` serving every service from
one device model (one process, as at the lab one set of devices answers
every protocol), with the session's KDC and RabbitMQ, an HTTPS ACL and a
settings policy naming the lab's settable devices, so the suite runs in CI.
A module, not the session, owns the simulator: two DMQ simulators on one
broker would both answer every job, and other modules start their own.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from acnet_proto import drf
from acnet_proto.api.backend import Backend
from acnet_proto.types import WriteResult
from tests.support.servers import die_with_parent

#: Devices the lab lets a test set (lab-devices.md); nothing else is ever written.
SETTABLE = frozenset(
    [
        "G:AMANDA",
        *(f"Z:ACLTS{i}" for i in range(1, 9)),
        "Z:ACLTST",
        "Z:CUBE",
        "Z:CUBE_X",
        "Z:CUBE_Y",
        "Z:CUBE_Z",
        "Z:REMSE2",
        "Z:RICH",
        "Z:SNDBOXSTJOHN",
        "Z:STRINGTEST",
        "Z:STRINGTEST2",
        "Z:STRTST",
    ]
)
#: The DMQ service principal at the lab, whatever host name the broker is reached by.
DMQ_PRINCIPAL = "daeset/bd/dmq.fnal.gov@FNAL.GOV"
T = 15.0  # per-call deadline: the lab's DPM takes up to ~3 s for an unknown device
_ENDPOINTS = ("DPM", "GRPC", "DEVDB", "ACL", "DMQ")
_STARTUP = 60.0  # seconds for the simulator to announce every service on a loaded machine


@dataclass(frozen=True)
class Lab:
    """Where each service answers (None: not available), and whether settings may be sent."""

    dpm: tuple[str, int] | None
    grpc: tuple[str, int] | None
    devdb: tuple[str, int] | None
    acl: str | None
    acl_verify: bool | str
    dmq: tuple[str, int] | None
    role: str
    writes: bool
    simulated: bool

    def need(self, service: str) -> Any:
        """The endpoint of ``service``, or skip the test naming the variable to set."""
        where = getattr(self, service)
        if where is None:
            pytest.skip(f"ACNET_LAB_{service.upper()} is not set: no lab {service} to test")
        return where


def _host_port(name: str, text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise pytest.UsageError(f"{name}={text!r}: give host:port, e.g. localhost:6802")
    return host, int(port)


def _from_environment() -> Lab | None:
    """The lab named by ``ACNET_LAB_*``, or None when no endpoint is set."""
    given = {name: os.environ.get(f"ACNET_LAB_{name}", "").strip() for name in _ENDPOINTS}
    if not any(given.values()):
        return None

    def endpoint(name: str) -> tuple[str, int] | None:
        return _host_port(f"ACNET_LAB_{name}", given[name]) if given[name] else None

    return Lab(
        dpm=endpoint("DPM"),
        grpc=endpoint("GRPC"),
        devdb=endpoint("DEVDB"),
        acl=given["ACL"] or None,
        acl_verify=os.environ.get("ACNET_LAB_ACL_CA") or True,
        dmq=endpoint("DMQ"),
        role=os.environ.get("ACNET_LAB_ROLE") or "testing",
        writes=os.environ.get("ACNET_LAB_WRITE") == "1",
        simulated=False,
    )


def _policy(folder: Path) -> Path:
    """A settings policy in which role ``testing`` may set the lab's settable devices."""
    path = folder / "lab-policy.toml"
    allowed = ", ".join(f'"{name}"' for name in sorted(SETTABLE))
    path.write_text(f'default_roles = ["testing"]\n\n[roles.testing]\nallow = [{allowed}]\n')
    return path


_BANNER = re.compile(r"simulated (DPM|DAQ gRPC|DevDB gRPC|ACL|DMQ) on (\S+)")


def _banners(proc: subprocess.Popen[str], count: int) -> dict[str, str]:
    """The ``what -> where`` of the first ``count`` ready lines ``proc`` prints."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, name="lab-sim-stdout", daemon=True).start()
    found: dict[str, str] = {}
    while len(found) < count:
        line = lines.get(timeout=_STARTUP)
        if line is None:
            break
        match = _BANNER.search(line)
        if match:
            found[match[1]] = match[2]
    return found


@contextlib.contextmanager
def _simulator(folder: Path, keytab: Path, broker: str) -> Iterator[dict[str, str]]:
    """``acnet-proto sim`` with every service on a free port; yields where each one listens."""
    from tests.support.certificates import write_certificate

    cert, key = write_certificate(folder)
    command = [sys.executable, "-m", "acnet_proto.adapters.cli.main", "sim", "--port", "0",
               "--grpc-port", "0", "--devdb-port", "0", "--acl-port", "0",
               "--acl-cert", str(cert), "--acl-key", str(key), "--keytab", str(keytab),
               "--policy", str(_policy(folder)), "--dmq-url", broker]  # fmt: skip
    log = folder / "sim.log"
    with log.open("w") as errors:
        proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=errors, text=True, preexec_fn=die_with_parent
        )
    try:
        found = _banners(proc, 5)
        if len(found) < 5:
            pytest.fail(f"acnet-proto sim announced only {found}:\n{log.read_text()[-3000:]}")
        yield {**found, "cert": str(cert)}
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture(scope="module")
def lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """The lab's services, or (no ``ACNET_LAB_*`` set) a simulator of them for this module."""
    real = _from_environment()
    if real is not None:
        yield real
        return
    kdc = request.getfixturevalue("kdc")
    rabbitmq = request.getfixturevalue("rabbitmq")
    with _simulator(tmp_path_factory.mktemp("lab"), kdc.keytab, rabbitmq.url) as where:
        yield Lab(
            dpm=_host_port("DPM", where["DPM"]),
            grpc=_host_port("gRPC", where["DAQ gRPC"]),
            devdb=_host_port("DevDB", where["DevDB gRPC"]),
            acl=where["ACL"],
            acl_verify=where["cert"],
            dmq=(rabbitmq.host, rabbitmq.port),
            role="testing",
            writes=True,
            simulated=True,
        )


# ---------------------------------------------------------------- clients


def _kerberos() -> Any:
    pytest.importorskip("gssapi")
    from acnet_proto.adapters.kerberos import KerberosAuth

    return KerberosAuth()


def _open(kind: str, lab: Lab, *, write: bool = False) -> Backend:
    """A backend of ``kind`` on ``lab`` (Kerberos and the role when ``write``)."""
    import acnet_proto

    backend: Backend
    if kind == "dpm":
        host, port = lab.need("dpm")
        credentials = {"auth": _kerberos(), "role": lab.role} if write else {}
        backend = acnet_proto.dpm(host, port, timeout=T, **credentials)
    elif kind == "grpc":
        pytest.importorskip("grpc")
        host, port = lab.need("grpc")
        backend = acnet_proto.grpc(host, port, timeout=T)
    elif kind == "acl":
        from acnet_proto.adapters.acl import ACLBackend

        backend = ACLBackend(lab.need("acl"), T, verify=lab.acl_verify)
    else:
        pytest.importorskip("pika")
        host, port = lab.need("dmq")
        backend = acnet_proto.dmq(host, port, auth=_kerberos(), timeout=T, service=DMQ_PRINCIPAL)
    return backend


@pytest.fixture
def open_backend(lab: Lab) -> Iterator[Callable[..., Backend]]:
    """Opens backends on the lab (``kind``: dpm, grpc, acl, dmq; ``write=True`` for
    settings), closed after the test."""
    made: list[Backend] = []

    def open_one(kind: str, *, write: bool = False) -> Backend:
        made.append(_open(kind, lab, write=write))
        return made[-1]

    yield open_one
    for backend in made:
        backend.close()


@pytest.fixture
def dpm(open_backend: Callable[..., Backend]) -> Backend:
    return open_backend("dpm")


@pytest.fixture
def grpc(open_backend: Callable[..., Backend]) -> Backend:
    return open_backend("grpc")


@pytest.fixture
def acl(open_backend: Callable[..., Backend]) -> Backend:
    return open_backend("acl")


@pytest.fixture
def devdb(lab: Lab) -> Iterator[Any]:
    """A DevDB client on the lab's DevDB."""
    pytest.importorskip("grpc")
    import acnet_proto

    host, port = lab.need("devdb")
    with acnet_proto.devdb(host, port, timeout=T) as client:
        yield client


@pytest.fixture(params=["dpm", "grpc", "dmq", "acl"])
def reader(request: pytest.FixtureRequest, open_backend: Callable[..., Backend]) -> Backend:
    """Each backend that reads, in turn."""
    return open_backend(request.param)


@pytest.fixture(params=["dpm", "grpc"])
def dpm_reader(request: pytest.FixtureRequest, open_backend: Callable[..., Backend]) -> Backend:
    """Each way to reach DPM itself (historical data, DPM's own statuses)."""
    return open_backend(request.param)


@pytest.fixture(params=["dpm", "dmq"])
def writer(request: pytest.FixtureRequest, lab: Lab, open_backend: Callable[..., Backend]) -> Any:
    """Each backend that sets with Kerberos, in turn (skipped at the lab without
    ``ACNET_LAB_WRITE=1``)."""
    if not lab.writes:
        pytest.skip("ACNET_LAB_WRITE is not 1: the suite does not set the lab's devices")
    return open_backend(request.param, write=True)


def settable(target: str) -> str:
    """``target`` (a DRF) if its device is one the lab lets tests set; else the test fails
    before anything is sent. The check is on the canonical device, whatever the spelling."""
    device = drf.parse(target).device
    if device not in SETTABLE:
        pytest.fail(f"{target!r} sets {device}, which is not one of the lab's test devices")
    return target


def set_value(backend: Backend, target: str, value: Any) -> WriteResult:
    """Set ``target`` to ``value`` through ``backend``, once the guard allows it."""
    return backend.write(settable(target), value, T)
