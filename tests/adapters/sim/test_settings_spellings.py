"""The simulated DPM's settings roles cannot be spelled around: a real server, a real KDC.

The attack: a role that allows ``*`` and denies ``G:*`` let G:AMANDA be set
through ``0:1234`` (its index), because roles matched the DRF as written. The
server now judges the device each list entry was bound to. Two clients: ours
(it canonicalises names before sending, but keeps an index as an index) and a
rogue one that puts each spelling on the wire exactly as written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from acnet_proto.plans.settings import WriteBatch, WritePlan
from acnet_proto.sim import DeviceModel, SettingsPolicy
from acnet_proto.status import Status
from tests.support.clients import ADAPTERS, Client
from tests.support.peers import apply_by_hand
from tests.support.servers.kdc import KDC

pytest.importorskip("gssapi")
from acnet_proto.adapters.kerberos import KerberosAuth
from acnet_proto.adapters.sim.dpm import SimServer

pytestmark = pytest.mark.integration

ROLE = "operations"
POLICY = SettingsPolicy.from_toml(
    f"""
[roles.{ROLE}]
allow = ["*"]
deny = ["G:*"]

[principals."operator@FNAL.GOV"]
roles = ["{ROLE}"]
"""
)
DPM_PRIV = Status.from_name("DPM_PRIV")
WAIT = 10.0  # generous: the machine is shared
_MODEL = DeviceModel.default()
AMANDA_DI = _MODEL.device("G:AMANDA").di  # type: ignore[union-attr]
ACLTST_DI = _MODEL.device("Z:ACLTST").di  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def sim(start_sim: Callable[..., SimServer], kdc: KDC) -> SimServer:
    return start_sim(keytab=kdc.keytab, policy=POLICY)


@pytest.fixture
def client(sim: SimServer) -> Iterator[Client]:
    opened = ADAPTERS["threaded"](sim.host, sim.port, auth=KerberosAuth(), role=ROLE)
    yield opened
    opened.close()


def status_of(result: Any) -> Status:
    return Status(result.facility_code, result.error_code)


@pytest.mark.parametrize(
    "spelling",
    ["G:AMANDA", f"0:{AMANDA_DI}", "g_amanda", "G:AMANDA.SETTING[0]", "g:amanda.setting.scaled"],
)
def test_a_denied_device_is_refused_in_every_spelling(client: Client, spelling: str) -> None:
    before = client.read("G:AMANDA.SETTING")
    result = client.write(spelling, before + 10)
    assert not result.success and status_of(result) == DPM_PRIV, result
    assert client.read("G:AMANDA.SETTING") == before


@pytest.mark.parametrize(
    "spelling", ["Z:ACLTST", f"0:{ACLTST_DI}", "z_acltst", "Z:ACLTST.SETTING[0]"]
)
def test_an_allowed_device_is_set_in_every_spelling(client: Client, spelling: str) -> None:
    target = client.read("Z:ACLTST.SETTING") + 1.0
    result = client.write(spelling, target)
    assert result.success, result
    assert client.read("Z:ACLTST.SETTING") == target


def rogue_write(sim: SimServer, wire: list[str], value: float) -> list[Status]:
    """Set each of ``wire`` to ``value`` in one ApplySettings, the DRFs on the list exactly as
    given (our client would canonicalise them); the status of each."""
    batch = WriteBatch([("Z:ACLTST", value)] * len(wire), ROLE, "rogue")
    batch.wire = list(wire)  # what a client that does not canonicalise puts on the list
    plan = WritePlan(batch, KerberosAuth().context, enabled=False)
    apply_by_hand(sim, plan, batch)
    return [status_of(r) for r in batch.write_results()]


def test_spellings_sent_as_written_are_judged_by_the_device_they_bind_to(
    sim: SimServer, client: Client
) -> None:
    denied = ["g_amanda@N", f"0_{AMANDA_DI}@N", f"0:{AMANDA_DI}.SETTING@N"]
    denied += ["g:amanda.setting[0]@N", "G_AMANDA.SCALED@N", "g:amanda.setting[:]@N"]
    allowed = ["z_acltst@N", f"0_{ACLTST_DI}@N"]
    before = client.read("G:AMANDA.SETTING")
    value = client.read("Z:ACLTST.SETTING") + 2.0
    for spelling in denied:
        assert rogue_write(sim, [spelling], before + 5) == [DPM_PRIV], spelling
    assert rogue_write(sim, allowed, value) == [Status(0, 0)] * len(allowed)
    assert client.read("G:AMANDA.SETTING") == before
    assert client.read("Z:ACLTST.SETTING") == value
