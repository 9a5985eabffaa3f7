"""pacsys's own client setting devices through our simulator, with real Kerberos (the session KDC).

What every one of our adapters does with settings is in tests/adapters/dpm/test_write_behaviour.py;
this file keeps what is not per-adapter: interoperability with pacsys. The
simulator holds the KDC's keytab for ``daeset/bd@FNAL.GOV`` and that file's
policy: ``operator`` holds ``testing`` (``Z:*``); ``outsider`` holds nothing.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from acnet_proto.status import Status
from tests.support.servers.kdc import KDC

pytest.importorskip("gssapi")
from acnet_proto.adapters.dpm.threaded import DPMBackend
from acnet_proto.adapters.sim.dpm import SimServer
from tests.adapters.dpm.test_write_behaviour import POLICY

pytestmark = pytest.mark.integration

DPM_PRIV = Status.from_name("DPM_PRIV")


@pytest.fixture
def sim(start_sim: Callable[..., SimServer], kdc: KDC) -> SimServer:
    return start_sim(keytab=kdc.keytab, policy=POLICY)


def setting_of(sim: SimServer, name: str) -> object:
    with DPMBackend(sim.host, sim.port) as reader:
        return reader.read(f"{name}.SETTING")


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
