"""Settings end to end: real Kerberos (the session KDC), the simulator enforcing a policy.

The simulator holds the KDC's keytab for ``daeset/bd@FNAL.GOV`` and this
policy: ``operator`` holds ``testing`` (``Z:*``); ``outsider`` holds nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from acnet_proto.errors import AuthenticationError
from acnet_proto.policy import Policy
from acnet_proto.status import Status
from acnet_proto.types import BasicControl
from tests.servers.kdc import KDC

pytest.importorskip("gssapi")
from acnet_proto.adapters.kerberos import KerberosAuth
from acnet_proto.adapters.sim import SimServer
from acnet_proto.adapters.threaded import DPMBackend

pytestmark = pytest.mark.integration

POLICY = Policy.from_toml(
    """
[roles.testing]
allow = ["Z:*"]

[principals."operator@FNAL.GOV"]
roles = ["testing"]
"""
)
DPM_PRIV = Status.from_name("DPM_PRIV")
NO_SUCH = Status.from_name("DPM_NO_SUCH_DEVICE")


@pytest.fixture
def sim(kdc: KDC) -> Iterator[SimServer]:
    with SimServer.in_thread(keytab=kdc.keytab, policy=POLICY) as server:
        yield server


@pytest.fixture
def backend(sim: SimServer) -> Iterator[DPMBackend]:
    with DPMBackend(sim.host, sim.port, auth=KerberosAuth(), role="testing") as b:
        yield b


def setting_of(sim: SimServer, name: str, span: str = "") -> object:
    with DPMBackend(sim.host, sim.port) as reader:
        return reader.read(f"{name}.SETTING{span}")


def test_scalar_write_changes_the_device(backend: DPMBackend, sim: SimServer) -> None:
    result = backend.write("Z:ACLTST", 45.0)
    assert result.success and result.drf == "Z:ACLTST"
    assert setting_of(sim, "Z:ACLTST") == pytest.approx(45.0)


def test_write_connection_is_reused_and_authenticated_once(
    backend: DPMBackend, sim: SimServer
) -> None:
    assert backend.write("Z:ACLTST", 1.0).ok
    first = backend._writer
    assert backend.write("Z:ACLTST", 2.0).ok
    assert backend._writer is first and first.client.settings_enabled
    assert setting_of(sim, "Z:ACLTST") == pytest.approx(2.0)


def test_write_many_partial_failure_in_input_order(backend: DPMBackend, sim: SimServer) -> None:
    results = backend.write_many(
        [("Z:ACLTST", 7.0), ("Z:NOTFND", 1.0), ("G:AMANDA", 3.0), ("Z:ACLTS1[0:2]", [1, 2, 3])]
    )
    assert [r.drf for r in results] == ["Z:ACLTST", "Z:NOTFND", "G:AMANDA", "Z:ACLTS1[0:2]"]
    assert [r.ok for r in results] == [True, False, False, True]
    assert (results[1].facility_code, results[1].error_code) == (NO_SUCH.facility, NO_SUCH.error)
    assert (results[2].facility_code, results[2].error_code) == (17, -17)  # G: is not testing's
    array = setting_of(sim, "Z:ACLTS1", "[0:2]")
    assert isinstance(array, np.ndarray) and array.tolist() == [1.0, 2.0, 3.0]


def test_refused_setting_leaves_the_device_unchanged(backend: DPMBackend, sim: SimServer) -> None:
    before = setting_of(sim, "G:AMANDA")
    assert backend.write("G:AMANDA", before + 10).error_code == DPM_PRIV.error
    assert setting_of(sim, "G:AMANDA") == before


def test_principal_without_the_role_is_refused(kdc: KDC, sim: SimServer) -> None:
    before = setting_of(sim, "Z:ACLTST")
    auth = KerberosAuth(ccache=kdc.kinit("outsider"))
    with DPMBackend(sim.host, sim.port, auth=auth, role="testing") as outsider:
        result = outsider.write("Z:ACLTST", before + 1)
    assert not result.ok and result.error_code == DPM_PRIV.error
    assert setting_of(sim, "Z:ACLTST") == before


def test_control_and_alarm_writes(backend: DPMBackend, sim: SimServer) -> None:
    assert backend.write("Z|ACLTST", BasicControl.OFF).ok
    with DPMBackend(sim.host, sim.port) as reader:
        assert reader.read("Z|ACLTST")["on"] is False
    assert backend.write("Z&ACLTST", BasicControl.ON).ok
    with DPMBackend(sim.host, sim.port) as reader:
        assert reader.read("Z|ACLTST")["on"] is True
    assert backend.write("Z@ACLTST.MAX", 50.0).ok
    assert backend.write("Z@ACLTST", {"minimum": 40.0, "alarm_enable": True}).ok
    with DPMBackend(sim.host, sim.port) as reader:
        alarm = reader.read("Z@ACLTST")
    assert (alarm["minimum"], alarm["maximum"], alarm["alarm_enable"]) == (40.0, 50.0, True)


def test_text_and_raw_writes(backend: DPMBackend, sim: SimServer) -> None:
    assert backend.write("Z:STRTST", "hello").ok
    assert setting_of(sim, "Z:STRTST") == "hello"
    raw = np.float32(45.0).tobytes()
    assert backend.write("Z:ACLTST.SETTING.RAW", raw).ok
    assert setting_of(sim, "Z:ACLTST") == pytest.approx(45.0)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ({"bogus": 1}, "unknown"),
        ({"minimum": 1}, None),  # valid only on an alarm
    ],
)
def test_dict_writes_are_checked(backend: DPMBackend, value: dict, words: str | None) -> None:
    with pytest.raises(ValueError, match=words or "READING"):
        backend.write("Z@ACLTST" if words else "Z:ACLTST", value)
    with pytest.raises(ValueError, match="BasicControl"):
        backend.write("Z|ACLTST", {"on": True})


def test_the_seeds_error_table(sim: SimServer, kdc: KDC, tmp_path: Path) -> None:
    with DPMBackend(sim.host, sim.port) as no_auth, pytest.raises(
        AuthenticationError, match="not configured for authenticated"
    ):
        no_auth.write("Z:ACLTST", 1.0)
    with DPMBackend(sim.host, sim.port, auth=KerberosAuth()) as no_role, pytest.raises(
        AuthenticationError, match="Role required"
    ):
        no_role.write("Z:ACLTST", 1.0)
    with pytest.raises(AuthenticationError, match="kinit"):
        KerberosAuth(ccache=tmp_path / "none")


def test_pacsys_writes_through_our_simulator(kdc: KDC, sim: SimServer) -> None:
    pacsys = pytest.importorskip("pacsys")
    with pacsys.dpm(
        host=sim.host, port=sim.port, auth=pacsys.KerberosAuth(), role="testing"
    ) as theirs:
        result = theirs.write("Z:ACLTST", 12.5)
        assert result.success, result.message
    assert setting_of(sim, "Z:ACLTST") == pytest.approx(12.5)


def test_pacsys_without_the_role_is_refused(
    kdc: KDC, sim: SimServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    pacsys = pytest.importorskip("pacsys")
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{kdc.kinit('outsider')}")
    before = setting_of(sim, "Z:ACLTST")
    with pacsys.dpm(
        host=sim.host, port=sim.port, auth=pacsys.KerberosAuth(), role="testing"
    ) as theirs:
        result = theirs.write("Z:ACLTST", before + 1)
    assert not result.success and result.error_code == DPM_PRIV.error
    assert setting_of(sim, "Z:ACLTST") == before
