"""The lab's six ramp cards on the simulated DPM: pacsys.ramp and our client, real Kerberos.

Each card's SETTING is 15 slots of 64 (int16 value, int16 time) points:
``<dev>.SETTING{slot*256:256}.RAW`` is a slot, and element ``64*slot + p`` of the
scaled SETTING (``B_HS23T[65]``) is point p's value, as pacsys's suite for the lab
reads them. The lab lets no test role set a ramp card; neither does the simulator's
default policy, so the writes here claim a role of this file's own policy that every
principal holds.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from acnet_proto.sim import SettingsPolicy
from acnet_proto.status import Status
from tests.support.servers.kdc import KDC

pytest.importorskip("gssapi")
pytest.importorskip("pacsys.ramp")
import pacsys
from pacsys import ramp as pacsys_ramp

from acnet_proto.adapters.dpm.threaded import DPMBackend
from acnet_proto.adapters.kerberos import KerberosAuth
from acnet_proto.adapters.sim.dpm import SimServer

pytestmark = pytest.mark.integration

ROLE = "ramps"
POLICY = SettingsPolicy.from_toml(
    f"""
default_roles = ["testing", "{ROLE}"]

[roles.testing]
allow = ["Z:*"]

[roles.{ROLE}]
allow = ["B:*", "R:*"]
"""
)
DPM_PRIV = Status.from_name("DPM_PRIV")
WAIT = 10.0  # generous: the machine is shared

CARDS = [
    pytest.param(pacsys_ramp.BoosterHVRamp, "B:HS23T", id="BoosterHV"),
    pytest.param(pacsys_ramp.BoosterQRamp, "B:QS23T", id="BoosterQ"),
    pytest.param(pacsys_ramp.RecyclerQRamp, "R:QT606T", id="RecyclerQ"),
    pytest.param(pacsys_ramp.RecyclerSRamp, "R:S202T", id="RecyclerS"),
    pytest.param(pacsys_ramp.RecyclerSCRamp, "R:SC319T", id="RecyclerSC"),
    pytest.param(pacsys_ramp.RecyclerHVSQRamp, "R:H626T", id="RecyclerHVSQ"),
]


@pytest.fixture(scope="module")
def sim(start_sim: Callable[..., SimServer], kdc: KDC) -> SimServer:
    return start_sim(keytab=kdc.keytab, policy=POLICY)


@pytest.fixture(scope="module")
def ours(sim: SimServer) -> Iterator[DPMBackend]:
    with DPMBackend(sim.host, sim.port, auth=KerberosAuth(), role=ROLE) as backend:
        yield backend


@pytest.fixture(scope="module")
def theirs(sim: SimServer) -> Iterator[Any]:
    with pacsys.dpm(host=sim.host, port=sim.port, auth=pacsys.KerberosAuth(), role=ROLE) as backend:
        yield backend


def a_ramp(cls: Any) -> Any:
    """A ramp of ``cls`` that uses most of an int16 and a few clock ticks a point."""
    full_scale = float(cls.scaler.scale(32767))
    values = np.linspace(-0.9, 0.9, cls.POINTS_PER_SLOT) * full_scale
    ticks = np.arange(cls.POINTS_PER_SLOT) % 7 + 1
    return cls(values=values, times=ticks * 1e6 / cls.update_rate_hz)


@pytest.mark.parametrize(("cls", "name"), CARDS)
def test_pacsys_writes_a_slot_that_both_clients_read_back(
    theirs: Any, ours: DPMBackend, cls: Any, name: str
) -> None:
    written = a_ramp(cls)
    result = written.write(name, slot=1, backend=theirs)
    assert result.success, result.message
    sent = written.to_bytes()
    assert ours.read(f"{name}.SETTING{{256:256}}.RAW", WAIT) == sent
    again = cls.read(name, slot=1, backend=theirs)
    held = cls.from_bytes(sent)  # what an int16 and the card's clock hold of the ramp
    assert np.array_equal(again.values, held.values)
    assert np.array_equal(again.times, held.times)
    scaled = name.replace(":", "_")
    for p in (0, 1, 40):
        assert ours.read(f"{scaled}[{64 + p}]", WAIT) == again.values[p]


@pytest.mark.parametrize(("cls", "name"), CARDS)
def test_slots_read_as_the_lab_suite_reads_them(theirs: Any, cls: Any, name: str) -> None:
    for slot in (0, 1):
        ramp = cls.read(name, slot=slot, backend=theirs)
        assert ramp.values.shape == ramp.times.shape == (64,)
        assert theirs.read(f"{name.replace(':', '_')}[{64 * slot + 1}]") == ramp.values[1]


def test_a_scaled_point_written_by_our_client_keeps_its_time(ours: DPMBackend) -> None:
    raw = struct.pack("<hh", 100, 37)
    assert ours.write("R:QT606T.SETTING[130].RAW", raw, WAIT).ok
    # RecyclerQ: 2 A a volt; 1.25 A is 0.625 V, 2048 counts exactly
    assert ours.write("R_QT606T[130]", 1.25, WAIT).ok
    assert ours.read("R:QT606T.SETTING{520:4}.RAW", WAIT) == struct.pack("<hh", 2048, 37)
    assert ours.read("R_QT606T[130]", WAIT) == 1.25


def test_the_testing_role_may_not_set_a_ramp_card(sim: SimServer) -> None:
    device = sim.model.device("B:HS23T")
    assert device is not None and device.ramp is not None
    before = device.ramp.raw(0, 64)
    with DPMBackend(sim.host, sim.port, auth=KerberosAuth(), role="testing") as testing:
        result = testing.write("B:HS23T.SETTING{0:256}.RAW", bytes(range(256)), WAIT)
    assert not result.ok and result.status == DPM_PRIV
    assert device.ramp.raw(0, 64) == before
    refusal = SettingsPolicy.default().authorize("operator@FNAL.GOV", "testing", "B:HS23T")
    assert refusal == DPM_PRIV
