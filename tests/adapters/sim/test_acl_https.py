"""The simulated ACL CGI over HTTPS: its server context from PEM files, and ``acnet-proto sim
--acl-port P --acl-cert CERT --acl-key KEY`` (an ``https://`` ready line; one line, exit 2,
naming the file, for a certificate or key it cannot serve with).

Certificates are made here, fresh for each module, for 127.0.0.1.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from acnet_proto.adapters.acl import ACLBackend
from acnet_proto.adapters.sim.acl import ACLSimServer, tls_context
from acnet_proto.errors import ConfigurationError
from tests.adapters.cli.installed import one_error_line, run
from tests.support.certificates import write_certificate


@pytest.fixture(scope="module")
def pem(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_certificate(tmp_path_factory.mktemp("tls"))


def test_a_server_context_from_pem_files_serves_https(pem: tuple[Path, Path]) -> None:
    cert, key = pem
    with (
        ACLSimServer(ssl_context=tls_context(cert, key)) as server,
        ACLBackend(server.base_url, verify=str(cert)) as backend,
    ):
        assert server.base_url.startswith("https://127.0.0.1:")
        assert backend.read("G:AMANDA") == 1.0


def test_the_key_may_be_in_the_certificate_file(pem: tuple[Path, Path], tmp_path: Path) -> None:
    both = tmp_path / "both.pem"
    both.write_bytes(pem[0].read_bytes() + pem[1].read_bytes())
    with (
        ACLSimServer(ssl_context=tls_context(both)) as server,
        ACLBackend(server.base_url, verify=str(pem[0])) as backend,
    ):
        assert backend.read("G:AMANDA") == 1.0


def _bad_files(pem: tuple[Path, Path], folder: Path) -> dict[str, tuple[Path, Path, str]]:
    """Each way the files can be wrong: (certificate, key, what the error says of which file)."""
    cert, key = pem
    other_key = write_certificate(folder, "other")[1]
    junk = folder / "junk.pem"
    junk.write_text("not a PEM file\n")
    missing = folder / "missing.pem"
    return {
        "missing certificate": (missing, key, f"the certificate {missing} cannot be read"),
        "missing key": (cert, missing, f"the private key {missing} cannot be read"),
        "no certificate": (junk, key, f"the certificate {junk} holds no PEM certificate"),
        "no key": (cert, junk, f"the private key {junk} holds no PEM private key"),
        "another's key": (
            cert,
            other_key,
            f"the private key {other_key} is not the key of the certificate {cert}",
        ),
    }


BAD = ["missing certificate", "missing key", "no certificate", "no key", "another's key"]


@pytest.mark.parametrize("case", BAD)
def test_files_that_cannot_serve_are_a_configuration_error_naming_them(
    pem: tuple[Path, Path], tmp_path: Path, case: str
) -> None:
    cert, key, problem = _bad_files(pem, tmp_path)[case]
    with pytest.raises(ConfigurationError) as raised:
        tls_context(cert, key)
    assert str(raised.value).startswith(problem)


def test_an_encrypted_key_is_refused_without_asking_for_its_password(
    pem: tuple[Path, Path], tmp_path: Path
) -> None:
    pytest.importorskip("cryptography")
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(pem[1].read_bytes(), None)
    locked = tmp_path / "locked.key"
    locked.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    with pytest.raises(ConfigurationError, match=rf"{locked} is encrypted; give it without"):
        tls_context(pem[0], locked)


# ---------------------------------------------------------------- acnet-proto sim


def _ready_lines(proc: subprocess.Popen[str], count: int) -> Iterator[str]:
    assert proc.stdout is not None
    for _ in range(count):
        yield proc.stdout.readline()


def test_sim_serves_the_acl_cgi_over_https_and_says_so(pem: tuple[Path, Path]) -> None:
    cert, key = pem
    proc = subprocess.Popen(
        [sys.executable, "-m", "acnet_proto.adapters.cli.main", "sim", "--port", "0",
         "--acl-port", "0", "--acl-cert", str(cert), "--acl-key", str(key)],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        lines = list(_ready_lines(proc, 2))
        acl = next(line for line in lines if line.startswith("simulated ACL on "))
        url = acl.removeprefix("simulated ACL on ").strip()
        assert url.startswith("https://127.0.0.1:") and url.endswith("/cgi-bin/acl.pl")
        with ACLBackend(url, verify=str(cert)) as backend:
            assert backend.read("G:AMANDA") == 1.0
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0


@pytest.mark.parametrize("case", BAD)
def test_sim_refuses_files_that_cannot_serve_in_one_line(
    pem: tuple[Path, Path], tmp_path: Path, case: str
) -> None:
    cert, key, problem = _bad_files(pem, tmp_path)[case]
    result = run(
        "acnet-proto", "sim", "--port", "0", "--acl-port", "0",
        "--acl-cert", str(cert), "--acl-key", str(key),
    )  # fmt: skip
    line = one_error_line(result, "acnet-proto", 2)
    assert problem in line and "give --acl-cert a PEM certificate" in line


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        (["--acl-port", "0", "--acl-key", "KEY"], "--acl-key needs --acl-cert"),
        (["--acl-cert", "CERT"], "--acl-cert needs --acl-port"),
    ],
)
def test_sim_refuses_half_an_https_configuration(options: list[str], problem: str) -> None:
    line = one_error_line(run("acnet-proto", "sim", "--port", "0", *options), "acnet-proto", 2)
    assert problem in line
