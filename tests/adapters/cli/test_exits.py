"""Every failure of the installed tools is one line on stderr and a documented exit status.

0 ok, 1 a device or read error, 2 usage, 3 no connection (docs/cli.md).
"""

from __future__ import annotations

import socket

import pytest

from acnet_proto.adapters.sim.dpm import SimServer
from tests.adapters.cli.installed import one_error_line, run, where


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_drf_that_does_not_parse_is_a_usage_error_naming_it() -> None:
    line = one_error_line(run("acget", "M:OUTTMP[1:"), "acget", 2)
    assert "'M:OUTTMP[1:'" in line and "fix the DRF" in line


def test_a_bad_drf_is_reported_and_the_good_ones_still_read(sim: SimServer) -> None:
    result = run("acget", "Z:ACLTS1[5:100]", "Z:ACLTST.ANALOG.BOGUS", "M:OUTTMP", *where(sim))
    line = one_error_line(result, "acget", 2)
    assert "'Z:ACLTST.ANALOG.BOGUS'" in line and "unknown field 'BOGUS'" in line
    first, second = result.stdout.splitlines()
    assert first.startswith("Z:ACLTS1[5:100] ERROR DPM_OUT_OF_BOUNDS")
    assert second.startswith("M:OUTTMP ") and second.endswith(" DegF")


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e999", "1,nan"])
def test_acput_refuses_a_value_that_is_not_finite_before_connecting(value: str) -> None:
    # no server is configured: a tool that tried to connect would fail differently
    line = one_error_line(run("acput", "Z:ACLTST", value), "acput", 2)
    assert f"'{value}'" in line and "finite" in line


def test_acput_refuses_a_read_only_property_before_connecting() -> None:
    line = one_error_line(run("acput", "Z:ACLTST.DESCRIPTION", "x"), "acput", 2)
    assert "'Z:ACLTST.DESCRIPTION'" in line and "read-only" in line


def test_no_server_is_exit_3_naming_where() -> None:
    port = str(_closed_port())
    result = run("acget", "M:OUTTMP", "--host", "127.0.0.1", "--port", port)
    line = one_error_line(result, "acget", 3)
    assert f"127.0.0.1:{port}" in line and "Connection refused" in line
    assert result.stdout.startswith("M:OUTTMP ERROR ACNET_DISCONNECTED")


def test_no_host_configured_says_how_to_get_one() -> None:
    line = one_error_line(run("acinfo", "M:OUTTMP"), "acinfo", 2)
    assert "ACNET_DPM_HOST" in line and "--sim" in line


@pytest.mark.parametrize(
    ("command", "named"),
    [
        (["acget", "--bogus", "M:OUTTMP"], "--bogus"),
        (["acget"], "DRF"),
        (["acmonitor", "-n", "0", "M:OUTTMP"], "-n/--count"),
        (["acget", "--timeout", "nan", "M:OUTTMP"], "--timeout"),
        (["acget", "-b", "acl", "--host", "x", "M:OUTTMP"], "--host"),
        (["acput", "Z:ACLTST", "1", "G:AMANDA"], "'G:AMANDA' has no value"),
        (["acnet-proto", "bogus"], "'bogus'"),
    ],
)
def test_bad_arguments_are_one_usage_line(command: list[str], named: str) -> None:
    line = one_error_line(run(*command), command[0], 2)
    assert named in line


def test_the_backend_options_refuse_what_a_backend_cannot_do() -> None:
    line = one_error_line(run("acmonitor", "-b", "acl", "M:OUTTMP"), "acmonitor", 2)
    assert "cannot stream" in line
    line = one_error_line(run("acput", "-b", "acl", "Z:ACLTST", "1"), "acput", 2)
    assert "cannot set" in line
    no_rabbitmq = {"ACNET_PROTO_RABBITMQ_SERVER": "/nonexistent/rabbitmq-server"}
    result = run("acget", "-b", "dmq", "--sim", "M:OUTTMP", env=no_rabbitmq)
    line = one_error_line(result, "acget", 2)
    assert "install rabbitmq-server" in line and "--dmq-url" in line
