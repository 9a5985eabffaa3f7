"""``acnet-proto sim``'s failures: one line, exit 2 for its files, 3 for a port in use."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.adapters.cli.installed import one_error_line, run


def test_a_port_in_use_is_exit_3_naming_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = one_error_line(run("acnet-proto", "sim", "--port", str(port)), "acnet-proto", 3)
    assert str(port) in line and "address already in use" in line and "choose another" in line


def test_a_grpc_port_in_use_is_one_line_too() -> None:
    pytest.importorskip("grpc")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("acnet-proto", "sim", "--port", "0", "--grpc-port", str(port))
    assert f"127.0.0.1:{port}" in one_error_line(result, "acnet-proto", 3)


@pytest.mark.parametrize(
    ("text", "problem"),
    [("not [valid toml\n", "not valid TOML"), ('[[device]]\nname = "bad"\n', "'bad'")],
)
def test_a_bad_device_model_is_exit_2_naming_the_file(
    tmp_path: Path, text: str, problem: str
) -> None:
    model = tmp_path / "devices.toml"
    model.write_text(text)
    line = one_error_line(run("acnet-proto", "sim", "--devices", str(model)), "acnet-proto", 2)
    assert str(model) in line and problem in line and "fix the file" in line


@pytest.mark.parametrize("option", ["--devices", "--policy", "--keytab"])
def test_a_missing_file_is_exit_2_naming_it(tmp_path: Path, option: str) -> None:
    missing = tmp_path / "missing"
    line = one_error_line(run("acnet-proto", "sim", option, str(missing)), "acnet-proto", 2)
    assert f"{option} {missing}" in line
