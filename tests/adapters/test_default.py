"""configure() as the seeds have it, the global backend of each kind, and the top-level calls'
checks.

Each test starts from no configuration and no variable from the developer's
shell, and leaves none behind. Backends of every kind connect only at their
first operation, so the kind made can be looked at without a server.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import acnet_proto
from acnet_proto.adapters import default
from acnet_proto.adapters.dpm.threaded import DPMBackend
from acnet_proto.api.auth import Auth, JWTAuth
from acnet_proto.errors import AuthenticationError, ConfigurationError
from acnet_proto.testing import FakeBackend
from tests.support.servers.kdc import KDC

SERVICES = ("DPM", "GRPC", "DMQ", "DEVDB")
VARIABLES = [
    *(
        f"{prefix}_{service}_{part}"
        for prefix in ("ACNET", "PACSYS")
        for service in SERVICES
        for part in ("HOST", "PORT")
    ),
    *(
        f"{prefix}_{name}"
        for prefix in ("ACNET", "PACSYS")
        for name in ("TIMEOUT", "POOL_SIZE", "JWT_TOKEN", "ACL_URL")
    ),
]
CLEARED = dict.fromkeys(inspect.signature(default.configure).parameters)
TOKEN = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJvcGVyYXRvciJ9.x"  # {"sub": "operator"}


class Kerberosish(Auth):
    """Stands for a KerberosAuth where only its kind matters (no KDC needed)."""

    kind = "kerberos"


@pytest.fixture(autouse=True)
def clean_globals(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    yield
    acnet_proto.configure(**CLEARED)
    acnet_proto.shutdown()


# ------------------------------------------------------------------- configure()


def test_configure_takes_the_seeds_parameters_by_keyword() -> None:
    pacsys = pytest.importorskip("pacsys")
    ours = inspect.signature(acnet_proto.configure).parameters
    assert list(ours) == list(inspect.signature(pacsys.configure).parameters)
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in ours.values())


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"backend": "http"}, ("backend", "'http'", "'dpm', 'grpc', 'dmq', 'acl'")),
        ({"backend": 3}, ("backend", "3")),
        ({"auth": "kerberos"}, ("auth", "'krb'", "'kerberos'")),
        ({"auth": TOKEN}, ("auth", "JWTAuth(token)")),
        ({"role": ""}, ("role",)),
        ({"devdb_host": " "}, ("devdb_host",)),
        ({"devdb_port": 0}, ("devdb_port",)),
        ({"auth": JWTAuth(TOKEN)}, ("backend='dpm'", "KerberosAuth()")),
        ({"backend": "grpc", "auth": Kerberosish()}, ("backend='grpc'", "JWTAuth(token)")),
        ({"backend": "dmq"}, ("backend='dmq'", "KerberosAuth()", "reads too")),
        ({"backend": "acl", "auth": JWTAuth(TOKEN)}, ("backend='acl'", "read-only")),
        ({"backend": "grpc", "role": "testing"}, ("role=", "DPM backend only")),
    ],
)
def test_configure_refuses_what_cannot_work_and_changes_nothing(
    options: dict[str, Any], words: tuple[str, ...]
) -> None:
    acnet_proto.configure(dpm_host="kept.example")
    with pytest.raises(ConfigurationError) as caught:
        acnet_proto.configure(dpm_host="changed.example", **options)
    assert isinstance(caught.value, ValueError)  # as the seeds document
    assert all(w in str(caught.value) for w in words), str(caught.value)
    assert default.default_backend().host == "kept.example"


@pytest.mark.parametrize(
    ("options", "environment", "kind"),
    [
        ({"dpm_host": "dpm.example"}, {}, "DPMBackend"),
        ({"backend": "grpc", "auth": JWTAuth(TOKEN)}, {"ACNET_GRPC_HOST": "g"}, "GRPCBackend"),
        ({"backend": "acl"}, {}, "ACLBackend"),
    ],
)
def test_the_global_backend_is_of_the_configured_kind(
    options: dict[str, Any],
    environment: dict[str, str],
    kind: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    acnet_proto.configure(default_timeout=2.5, **options)
    backend = default.default_backend()
    assert type(backend).__name__ == kind
    assert backend.timeout == 2.5  # type: ignore[attr-defined]
    assert default.default_backend() is backend


@pytest.mark.integration
def test_the_global_backend_can_be_dmq(kdc: KDC, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pika")
    monkeypatch.setenv("PACSYS_DMQ_HOST", "dmq.example")
    acnet_proto.configure(backend="dmq", auth="krb")
    backend = default.default_backend()
    assert type(backend).__name__ == "DMQBackend"
    assert backend.host == "dmq.example"  # type: ignore[attr-defined]


def test_backend_none_goes_back_to_dpm(monkeypatch: pytest.MonkeyPatch) -> None:
    acnet_proto.configure(backend="acl")
    assert type(default.default_backend()).__name__ == "ACLBackend"
    monkeypatch.setenv("PACSYS_DPM_HOST", "from.environment")
    acnet_proto.configure(backend=None)
    assert default.default_backend().host == "from.environment"  # type: ignore[attr-defined]


def test_devdb_settings_reach_both_devdb_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("grpc")
    from acnet_proto.adapters import devdb

    monkeypatch.setenv("ACNET_DEVDB_HOST", "from.environment")
    acnet_proto.configure(devdb_host="devdb.example", devdb_port=7000)
    with acnet_proto.devdb() as own:
        assert (own.host, own.port) == ("devdb.example", 7000)
    shared = devdb.default_devdb()
    assert (shared.host, shared.port) == ("devdb.example", 7000)
    acnet_proto.shutdown()  # closes the shared client too
    assert devdb.default_devdb() is not shared
    acnet_proto.configure(devdb_host=None)  # back to the environment; the port stays
    assert (devdb.default_devdb().host, devdb.default_devdb().port) == ("from.environment", 7000)


def test_only_devdb_settings_replace_the_shared_devdb_client() -> None:
    pytest.importorskip("grpc")
    from acnet_proto.adapters import devdb

    acnet_proto.configure(devdb_host="devdb.example")
    shared = devdb.default_devdb()
    acnet_proto.configure(default_timeout=2.0, backend="acl")  # not DevDB's: the client stays
    assert devdb.default_devdb() is shared
    acnet_proto.configure(devdb_port=7001)
    assert devdb.default_devdb() is not shared and devdb.default_devdb().port == 7001


def test_make_backend_makes_each_kind_and_names_a_missing_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("requests")
    url = "http://acl.example/cgi-bin/acl.pl"  # ACL's "host" is the CGI's base URL
    with default.make_backend("acl", url, timeout=1.5) as acl:
        assert type(acl).__name__ == "ACLBackend" and acl.timeout == 1.5
        assert getattr(acl, "base_url", None) == url
    with default.make_backend("dpm", "dpm.example", 6803, pool_size=2) as dpm:
        assert isinstance(dpm, DPMBackend)
        assert (dpm.host, dpm.port, dpm.pool_size) == ("dpm.example", 6803, 2)
    monkeypatch.setitem(sys.modules, "acnet_proto.adapters.dmq", None)  # as if not installed
    with pytest.raises(ConfigurationError, match=r"pip install 'acnet-proto\[dmq\]'"):
        default.make_backend("dmq", auth=Kerberosish())


# ------------------------------------------------- credentials through configure()


@pytest.fixture
def sim(start_sim: Callable[..., Any], kdc: KDC) -> Any:
    return start_sim(keytab=kdc.keytab)


@pytest.mark.integration
def test_auth_krb_is_a_kerberos_auth_made_now(kdc: KDC, sim: Any) -> None:
    acnet_proto.configure(dpm_host=sim.host, dpm_port=sim.port, auth="krb", role="testing")
    backend = default.default_backend()
    assert backend.principal == "operator@FNAL.GOV"  # type: ignore[attr-defined]
    assert acnet_proto.write("Z:ACLTST", 31.0).ok


@pytest.mark.integration
def test_auth_krb_without_a_ticket_says_to_kinit_and_changes_nothing(
    kdc: KDC, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'empty'}")
    with pytest.raises(AuthenticationError, match=r"no Kerberos ticket.*kinit"):
        acnet_proto.configure(dpm_host="changed.example", auth="krb")
    with pytest.raises(ConfigurationError, match="no DPM host"):
        default.default_backend()


@pytest.mark.integration
def test_a_global_write_after_kdestroy_says_to_kinit(kdc: KDC, sim: Any) -> None:
    from acnet_proto.adapters.kerberos import KerberosAuth
    from acnet_proto.adapters.sim._processes import find_program

    ccache = kdc.kinit("operator")
    auth = KerberosAuth(ccache=ccache)
    acnet_proto.configure(dpm_host=sim.host, dpm_port=sim.port, auth=auth, role="testing")
    assert acnet_proto.write("Z:ACLTST", 32.0).ok
    assert kdc.run(find_program("kdestroy"), "-c", f"FILE:{ccache}").returncode == 0
    with pytest.raises(AuthenticationError, match=r"kinit operator@FNAL\.GOV") as caught:
        acnet_proto.write("Z:ACLTST", 33.0)
    assert type(caught.value.__cause__).__module__.startswith("gssapi")  # chained, not raised
    assert acnet_proto.read("Z:ACLTST.SETTING") == 32.0


# ------------------------------------------------------------- the top-level calls


@pytest.mark.parametrize(
    ("name", "argument"),
    [
        ("get_many", "M:OUTTMP"),
        ("read_many", "M:OUTTMP"),
        ("subscribe", "M:OUTTMP@p,200"),
        ("get_many", b"M:OUTTMP"),
        ("get_many", {"M:OUTTMP": 1}),
    ],
)
def test_a_lone_drf_is_the_backends_type_error(name: str, argument: Any) -> None:
    with pytest.raises(TypeError) as backends:
        getattr(FakeBackend(), name)(argument)
    with pytest.raises(TypeError) as top_level:  # before any backend is made or DRF read
        getattr(acnet_proto, name)(argument)
    assert str(top_level.value) == str(backends.value)
    assert "list" in str(top_level.value)
