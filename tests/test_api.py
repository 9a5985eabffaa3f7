"""The top-level API: names bound on first use, settings from arguments then the environment.

The global backend is real: each test points it at the simulated DPM (or
at nothing) through the environment or ``configure()``, and a fixture
resets it afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

import acnet_proto
from acnet_proto.adapters import default
from acnet_proto.adapters.dpm.threaded import DPMBackend
from acnet_proto.adapters.sim.dpm import SimServer
from acnet_proto.api.config import ENVIRONMENT, DPMSettings, resolve_dpm
from acnet_proto.api.device import Device
from acnet_proto.errors import ConfigurationError
from acnet_proto.testing import FakeBackend

ALL_VARIABLES = [name for names in ENVIRONMENT.values() for name in names]


@pytest.fixture(autouse=True)
def clean_globals(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No variable from the developer's shell, no backend or configure() left by a test."""
    for name in ALL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    yield
    acnet_proto.configure(dpm_host=None, dpm_port=None, pool_size=None, default_timeout=None)
    acnet_proto.shutdown()


def run_python(code: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


# ---------------------------------------------------------------------- lazy names


def test_names_are_bound_on_first_use_not_at_import() -> None:
    out = run_python(
        """
        import sys
        import acnet_proto
        names = ("socket", "selectors", "threading",
                 "acnet_proto.adapters.dpm.threaded", "acnet_proto.api.device")
        before = sorted(m for m in names if m in sys.modules)
        read = acnet_proto.read
        from acnet_proto.adapters import default
        print(before, read is default.read, "acnet_proto.adapters.dpm.threaded" in sys.modules,
              "read" in vars(acnet_proto))
        """
    )
    assert out == "[] True True True"


def test_every_exported_name_resolves() -> None:
    for name in acnet_proto.__all__:
        if name == "KerberosAuth":
            continue  # needs gssapi, an optional extra
        assert getattr(acnet_proto, name) is not None, name
    assert set(acnet_proto.__all__) <= set(dir(acnet_proto))
    assert acnet_proto.DPMHTTPBackend is acnet_proto.DPMBackend is DPMBackend
    assert acnet_proto.dpm_http is acnet_proto.dpm
    assert acnet_proto.Device is Device


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'reed'"):
        acnet_proto.reed  # noqa: B018


# ---------------------------------------------------------------- where to connect


def test_arguments_win_over_acnet_variables_which_win_over_pacsys_ones() -> None:
    env = {
        "ACNET_DPM_HOST": "acnet-host",
        "PACSYS_DPM_HOST": "pacsys-host",
        "PACSYS_DPM_PORT": "7000",
        "ACNET_POOL_SIZE": "2",
        "PACSYS_POOL_SIZE": "3",
        "PACSYS_TIMEOUT": "1.5",
    }
    assert resolve_dpm(environ=env) == DPMSettings("acnet-host", 7000, 2, 1.5)
    assert resolve_dpm("arg-host", 6900, 8, 0.5, environ=env) == DPMSettings(
        "arg-host", 6900, 8, 0.5
    )
    assert resolve_dpm(environ={"PACSYS_DPM_HOST": "p"}) == DPMSettings("p", 6802, 4, 5.0)


def test_the_fallback_names_are_the_ones_pacsys_reads() -> None:
    pytest.importorskip("pacsys")
    values = {"host": "pacsys-host", "port": "7001", "pool_size": "3", "timeout": "1.5"}
    env = {pacsys_name: values[setting] for setting, (_, pacsys_name) in ENVIRONMENT.items()}
    out = run_python(
        """
        import pacsys
        backend = pacsys.dpm()  # connects on first use only
        print(backend.host, backend.port, backend.pool_size, backend.timeout)
        """,
        env,
    )
    assert out == "pacsys-host 7001 3 1.5"
    assert resolve_dpm(environ=env) == DPMSettings("pacsys-host", 7001, 3, 1.5)


def test_without_a_host_the_error_says_what_to_set() -> None:
    with pytest.raises(ConfigurationError) as caught:
        resolve_dpm(environ={"ACNET_DPM_PORT": "6802"})
    assert "ACNET_DPM_HOST" in str(caught.value)
    assert "acnet-proto sim" in str(caught.value)
    with pytest.raises(ConfigurationError, match="ACNET_DPM_HOST"):
        acnet_proto.read("M:OUTTMP")
    with pytest.raises(ConfigurationError, match="acnet-proto sim"):
        acnet_proto.dpm()


@pytest.mark.parametrize(
    ("variable", "text", "complaint"),
    [
        ("ACNET_DPM_PORT", "http", "not an integer"),
        ("PACSYS_DPM_PORT", "0", "1 to 65535"),
        ("ACNET_POOL_SIZE", "-1", "positive"),
        ("ACNET_TIMEOUT", "nan", "finite"),
        ("PACSYS_TIMEOUT", "soon", "not a number"),
    ],
)
def test_a_bad_variable_is_named_in_the_error(variable: str, text: str, complaint: str) -> None:
    with pytest.raises(ConfigurationError, match=complaint) as caught:
        resolve_dpm(environ={"ACNET_DPM_HOST": "h", variable: text})
    assert variable in str(caught.value)


def test_configure_checks_values_and_names_its_parameters() -> None:
    with pytest.raises(ConfigurationError, match="dpm_port"):
        acnet_proto.configure(dpm_port="6802")
    with pytest.raises(ConfigurationError, match="default_timeout"):
        acnet_proto.configure(default_timeout=0)
    with pytest.raises(ConfigurationError, match="dpm_host"):
        acnet_proto.configure(dpm_host="  ")
    with pytest.raises(TypeError):
        acnet_proto.configure("localhost")  # keyword-only, as in pacsys


# --------------------------------------------------------------- the global backend


def test_the_environment_points_the_global_backend(
    sim: SimServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PACSYS_DPM_HOST", sim.host)  # pacsys's names alone are enough
    monkeypatch.setenv("PACSYS_DPM_PORT", str(sim.port))
    monkeypatch.setenv("ACNET_POOL_SIZE", "2")
    assert isinstance(acnet_proto.read("M:OUTTMP"), float)
    backend = default.default_backend()
    assert (backend.host, backend.port, backend.pool_size) == (sim.host, sim.port, 2)
    assert default.default_backend() is backend  # made once


def test_configure_wins_over_the_environment_and_replaces_the_backend(
    sim: SimServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACNET_DPM_HOST", "no-such-host.invalid")
    monkeypatch.setenv("ACNET_DPM_PORT", "1")
    acnet_proto.configure(dpm_host=sim.host, dpm_port=sim.port)
    first = default.default_backend()
    assert acnet_proto.get("M:OUTTMP").ok
    acnet_proto.configure(default_timeout=2.5)  # keeps host and port, makes a new backend
    second = default.default_backend()
    assert second is not first
    assert (second.host, second.port, second.timeout) == (sim.host, sim.port, 2.5)
    with pytest.raises(RuntimeError, match="closed"):
        first.get("M:OUTTMP")
    acnet_proto.configure(dpm_host=None, dpm_port=None)  # back to the environment
    assert default.default_backend().host == "no-such-host.invalid"


def test_shutdown_closes_the_backend_and_keeps_the_settings(sim: SimServer) -> None:
    acnet_proto.configure(dpm_host=sim.host, dpm_port=sim.port)
    stream = acnet_proto.subscribe(["M:OUTTMP@p,100"])
    first = default.default_backend()
    acnet_proto.shutdown()
    assert stream.stopped
    acnet_proto.shutdown()  # twice is fine
    assert acnet_proto.read_many(["M:OUTTMP", "Z:ACLTST"])[1] > 0
    assert default.default_backend() is not first


def test_the_top_level_calls(sim: SimServer) -> None:
    acnet_proto.configure(dpm_host=sim.host, dpm_port=sim.port)
    device = Device("Z:ACLTS1[0:2]")
    readings = acnet_proto.get_many(["M:OUTTMP", device, acnet_proto.DataRequest("Z:ACLTST")])
    assert [r.drf for r in readings] == ["M:OUTTMP", "Z:ACLTS1[0:2]", "Z:ACLTST"]
    assert all(r.ok for r in readings)
    assert len(acnet_proto.read(device)) == 3
    with pytest.raises(acnet_proto.DeviceError):
        acnet_proto.read("Z:NOTFND")
    with pytest.raises(acnet_proto.ReadError) as caught:
        acnet_proto.read_many(["M:OUTTMP", "Z:NOTFND"])
    assert [r.ok for r in caught.value.readings] == [True, False]
    with acnet_proto.subscribe([Device("M:OUTTMP@p,20")]) as stream:
        reading, handle = next(iter(stream.readings(timeout=5)))
    assert handle is stream and reading.name == "M:OUTTMP"
    with pytest.raises(acnet_proto.AuthenticationError, match="KerberosAuth"):
        acnet_proto.write("Z:ACLTST", 1.0)
    with pytest.raises(acnet_proto.AuthenticationError, match="KerberosAuth"):
        acnet_proto.write_many([(device, [1.0, 2.0, 3.0])])


def test_devices_bound_to_a_backend_use_it() -> None:
    fake = FakeBackend()
    fake.set_reading("M:OUTTMP", 72.5)
    fake.set_reading("Z:ACLTST", 45.0)
    outtmp, acltst = Device("M:OUTTMP", fake), Device("Z:ACLTST", fake)
    assert acnet_proto.read(outtmp) == 72.5  # no host is configured: the global is not used
    assert acnet_proto.read_many([outtmp, acltst]) == [72.5, 45.0]
    assert acnet_proto.write(acltst, 46.0).ok
    assert fake.writes == [("Z:ACLTST", 46.0)]
    with pytest.raises(ValueError, match="same backend"):
        acnet_proto.get_many([outtmp, "Z:ACLTST"])
    with pytest.raises(ValueError, match="same backend"):
        acnet_proto.get_many([outtmp, Device("Z:ACLTST", FakeBackend())])


def test_factories_take_arguments_then_the_environment(
    sim: SimServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACNET_DPM_HOST", sim.host)
    monkeypatch.setenv("ACNET_DPM_PORT", str(sim.port))
    monkeypatch.setenv("ACNET_TIMEOUT", "3")
    with acnet_proto.dpm(pool_size=1) as backend:
        assert (backend.host, backend.port, backend.pool_size, backend.timeout) == (
            sim.host,
            sim.port,
            1,
            3.0,
        )
        assert backend.read("M:OUTTMP") is not None
    with acnet_proto.dpm_http(host="localhost", port=6802) as other:
        assert (other.host, other.port, other.pool_size) == ("localhost", 6802, 4)
