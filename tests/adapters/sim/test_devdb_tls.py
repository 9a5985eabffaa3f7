"""The simulated DevDB over TLS, as the lab serves it: ``tls_credentials`` from PEM files, our
client's ``tls``/``ca_file``, and ``acnet-proto sim --devdb-port P --devdb-cert CERT
--devdb-key KEY`` read by our client and by pacsys's (which defaults to TLS).

Certificates are made here, fresh for each module, for 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from acnet_proto.adapters.devdb import DevDBClient, DevDBRpcError
from acnet_proto.adapters.grpc.server import tls_credentials
from acnet_proto.adapters.sim.devdb import DevDBSimServer
from acnet_proto.errors import ConfigurationError
from tests.adapters.cli.installed import BIN, one_error_line, run
from tests.support.certificates import write_certificate


@pytest.fixture(scope="module")
def pem(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_certificate(tmp_path_factory.mktemp("tls"), "devdb-sim")


@pytest.fixture(scope="module")
def tls_sim(pem: tuple[Path, Path]) -> Iterator[DevDBSimServer]:
    with DevDBSimServer(credentials=tls_credentials(*pem)) as sim:
        yield sim


def test_our_client_reads_over_tls_trusting_the_servers_certificate(
    tls_sim: DevDBSimServer, pem: tuple[Path, Path]
) -> None:
    assert tls_sim.tls
    with DevDBClient(tls_sim.host, tls_sim.port, ca_file=pem[0]) as db:
        assert db.tls and "TLS" in repr(db)
        assert db.get_device_info(["M:OUTTMP"])["M:OUTTMP"].reading.common_units == "DegF"


def test_the_key_may_be_in_the_certificate_file(pem: tuple[Path, Path], tmp_path: Path) -> None:
    both = tmp_path / "both.pem"
    both.write_bytes(pem[0].read_bytes() + pem[1].read_bytes())
    with (
        DevDBSimServer(credentials=tls_credentials(both)) as sim,
        DevDBClient(sim.host, sim.port, ca_file=pem[0]) as db,
    ):
        assert db.get_alarm_info(["Z:ACLTST"]) != []


@pytest.mark.parametrize("client", ["plain", "untrusting"])
def test_a_tls_server_refuses_a_plain_or_untrusting_client_unavailable(
    tls_sim: DevDBSimServer, client: str
) -> None:
    tls = client == "untrusting"  # TLS, but grpc's own roots do not vouch for a test certificate
    with (
        DevDBClient(tls_sim.host, tls_sim.port, timeout=10, tls=tls) as db,
        pytest.raises(DevDBRpcError) as raised,
    ):
        db.get_device_info(["M:OUTTMP"])
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE


def test_server_files_that_cannot_serve_are_a_configuration_error_naming_them(
    pem: tuple[Path, Path], tmp_path: Path
) -> None:
    other_key = write_certificate(tmp_path, "other")[1]
    mismatch = re.escape(f"the private key {other_key} is not the key of the certificate")
    with pytest.raises(ConfigurationError, match=mismatch):
        tls_credentials(pem[0], other_key)
    missing = tmp_path / "no.crt"
    with pytest.raises(ConfigurationError, match=re.escape(f"the certificate {missing} cannot")):
        tls_credentials(missing, pem[1])


def test_a_ca_file_that_cannot_be_used_is_a_configuration_error_naming_it(
    pem: tuple[Path, Path], tmp_path: Path
) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    cases = {
        tmp_path / "missing.pem": "cannot be read",
        junk: "holds no PEM certificate",
    }
    for path, problem in cases.items():
        with pytest.raises(ConfigurationError, match=re.escape(f"the CA file {path} {problem}")):
            DevDBClient("127.0.0.1", 1, ca_file=path)
    with pytest.raises(ConfigurationError, match="tls=False"):
        DevDBClient("127.0.0.1", 1, tls=False, ca_file=pem[0])


# ---------------------------------------------------------------- acnet-proto sim


PACSYS_DEVDB = r"""
import json, sys
from pacsys.devdb import DevDBClient

with DevDBClient(host=sys.argv[1], port=int(sys.argv[2]), timeout=10) as db:  # TLS by default
    info = db.get_device_info(["Z:ACLTST", "M:OUTTMP"])
print(json.dumps([info["Z:ACLTST"].description, info["M:OUTTMP"].reading.common_units]))
"""


def _devdb_line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("simulated DevDB"):
            return line
    raise AssertionError(f"acnet-proto sim exited {proc.wait()} without a DevDB line")


def test_sim_serves_devdb_over_tls_to_our_client_and_to_pacsys(pem: tuple[Path, Path]) -> None:
    cert, key = pem
    proc = subprocess.Popen(
        [str(BIN / "acnet-proto"), "sim", "--port", "0",
         "--devdb-port", "0", "--devdb-cert", str(cert), "--devdb-key", str(key)],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        line = _devdb_line(proc)
        assert line.startswith("simulated DevDB gRPC on 127.0.0.1:") and "(TLS)" in line
        port = int(line.split()[4].rpartition(":")[2])
        with DevDBClient("127.0.0.1", port, ca_file=cert) as db:
            assert db.get_device_info(["Z:ACLTST"])["Z:ACLTST"].description == "ACL test device!"
        # pacsys has no CA option: grpc's own variable says what its default roots are
        environment = {k: v for k, v in os.environ.items() if not k.startswith("PACSYS_DEVDB")}
        environment["GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"] = str(cert)
        done = subprocess.run(
            [sys.executable, "-c", PACSYS_DEVDB, "127.0.0.1", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            env=environment,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == ["ACL test device!", "DegF"]
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0


def test_sim_refuses_a_devdb_certificate_it_cannot_serve_in_one_line(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a PEM file\n")
    result = run(
        "acnet-proto", "sim", "--port", "0", "--devdb-port", "0", "--devdb-cert", str(junk)
    )
    line = one_error_line(result, "acnet-proto", 2)
    assert f"the certificate {junk} holds no PEM certificate" in line
    assert "give --devdb-cert a PEM certificate" in line


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        (["--devdb-port", "0", "--devdb-key", "KEY"], "--devdb-key needs --devdb-cert"),
        (["--devdb-cert", "CERT"], "--devdb-cert needs --devdb-port"),
    ],
)
def test_sim_refuses_half_a_devdb_tls_configuration(options: list[str], problem: str) -> None:
    line = one_error_line(run("acnet-proto", "sim", "--port", "0", *options), "acnet-proto", 2)
    assert problem in line
