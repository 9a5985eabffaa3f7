"""The simulator's settings roles judge the device, not the spelling.

A role that allows ``*`` and denies ``G:*`` once let ``0:1234`` (G:AMANDA by
its index) through: roles matched the DRF as written. Here the policy, the
per-connection settings and a whole session (in memory, with an acceptor that
trusts any token: the Kerberos flow itself is tested against a real KDC in
``tests/adapters/sim/test_settings_spellings.py``) refuse every spelling of a
denied device and allow every spelling of an allowed one.
"""

from __future__ import annotations

import itertools

import pytest

from acnet_proto.pc import dpm
from acnet_proto.sim import DeviceModel, SettingsPolicy
from acnet_proto.sim.devices import SimDevice
from acnet_proto.sim.dpm import FIRST_LIST_ID, DPMSession
from acnet_proto.sim.policy import DPM_PRIV
from acnet_proto.sim.schedule import ClockEvents
from acnet_proto.sim.settings import ServerSettings
from tests.support.peers import SessionPeer

PRINCIPAL = "operator@FNAL.GOV"
POLICY = SettingsPolicy.from_toml(
    f"""
[roles.operations]
allow = ["*"]
deny = ["G:*"]

[principals."{PRINCIPAL}"]
roles = ["operations"]
"""
)


def device(model: DeviceModel, name: str) -> SimDevice:
    found = model.device(name)
    assert found is not None, name
    return found


MODEL = DeviceModel.default()
AMANDA, ACLTST = device(MODEL, "G:AMANDA"), device(MODEL, "Z:ACLTST")
G_SPELLINGS = [
    "G:AMANDA",
    "g:amanda",
    "g_amanda",
    "G:AMANDA.SETTING",
    "G:AMANDA.SETTING[0]",
    "G:AMANDA.SETTING[:]",
    "G:AMANDA.SETTING.SCALED",
    "g@amanda.max",
]
Z_SPELLINGS = ["Z:ACLTST", "z_acltst", "Z:ACLTST.SETTING[0]", "Z:ACLTST.SETTING.SCALED"]


@pytest.mark.parametrize("spelling", G_SPELLINGS)
def test_a_denied_device_is_denied_in_every_spelling(spelling: str) -> None:
    assert POLICY.authorize(PRINCIPAL, "operations", spelling) == DPM_PRIV


@pytest.mark.parametrize("spelling", Z_SPELLINGS)
def test_an_allowed_device_is_allowed_in_every_spelling(spelling: str) -> None:
    assert POLICY.authorize(PRINCIPAL, "operations", spelling) is None


@pytest.mark.parametrize("name", [f"0:{ACLTST.di}", f"0:{AMANDA.di}", "not a DRF", ""])
def test_no_role_allows_an_index_name_or_what_is_not_a_device(name: str) -> None:
    # "*" would match "0:1234": an index is not a name a pattern can judge
    assert POLICY.authorize(PRINCIPAL, "operations", name) == DPM_PRIV


class TrustingAcceptor:
    """An acceptor that takes any token as ``PRINCIPAL``'s (the in-memory peer of a unit test)."""

    complete = False
    initiator: str | None = None

    def step(self, token: bytes) -> bytes | None:
        self.complete, self.initiator = True, PRINCIPAL
        return None

    def verify_mic(self, message: bytes, mic: bytes) -> bool:
        return True


def enabled_settings() -> ServerSettings:
    settings = ServerSettings("daeset/bd", TrustingAcceptor, POLICY)
    settings.on_authenticate(dpm.AuthenticateRequest(list_id=1, token=b""))
    settings.on_authenticate(dpm.AuthenticateRequest(list_id=1, token=b"ticket"))
    settings.on_enable(dpm.EnableSettingsRequest(list_id=1, message=b"m", mic=b"mic"))
    assert settings.principal == PRINCIPAL
    return settings


def test_listed_entries_are_judged_by_the_device_they_name() -> None:
    entries = {0: "#ROLE:operations", 1: "g_amanda", 2: f"0:{AMANDA.di}", 3: "Z:ACLTST.SETTING"}
    entries |= {4: f"0:{ACLTST.di}", 5: "not a DRF"}
    verdicts = enabled_settings().authorize(entries, [1, 2, 3, 4, 5], lambda name: 0)
    # an index is refused even for an allowed device: the server passes model names
    assert verdicts == {1: DPM_PRIV, 2: DPM_PRIV, 3: None, 4: DPM_PRIV, 5: DPM_PRIV}


class Session(SessionPeer):
    """A session with settings enabled for ``PRINCIPAL``, and a client engine speaking to it."""

    def __init__(self) -> None:
        self.model = DeviceModel.default()
        ids = itertools.count(FIRST_LIST_ID)
        settings = ServerSettings("daeset/bd", TrustingAcceptor, POLICY)
        clock = ClockEvents(self.model, 0.0)
        super().__init__(DPMSession(self.model, clock, settings, lambda: next(ids)))
        self.lid = self.list_id

    def enable(self) -> None:
        lid = self.lid
        self.send(dpm.AuthenticateRequest(list_id=lid, token=b""))
        self.send(dpm.AuthenticateRequest(list_id=lid, token=b"ticket"))
        [reply] = self.send(dpm.EnableSettingsRequest(list_id=lid, message=b"m", mic=b"mic"))
        assert isinstance(reply, dpm.StatusReply) and reply.status == 0


def test_a_session_authorizes_the_model_device_whatever_the_spelling() -> None:
    pair = Session()
    pair.enable()
    # what a session lists is what a client sets: SETTING, by qualifier or by name
    denied = ["G:AMANDA.SETTING", "g_amanda", "g:amanda.setting[0]", "G_AMANDA.SCALED"]
    denied += ["G:AMANDA.SETTING[:]", f"0_{AMANDA.di}", f"0:{AMANDA.di}.SETTING"]
    allowed = ["Z:ACLTST.SETTING", "z_acltst", "Z_ACLTST[0]", f"0_{ACLTST.di}"]
    drfs, lid = denied + allowed, pair.lid
    adds = [dpm.AddToListRequest(list_id=lid, ref_id=0, drf_request="#ROLE:operations")]
    adds += [
        dpm.AddToListRequest(list_id=lid, ref_id=ref, drf_request=f"{drf}@N")
        for ref, drf in enumerate(drfs, 1)
    ]
    pair.send(*adds, dpm.StartListRequest(list_id=lid))
    before = list(device(pair.model, "G:AMANDA").setting_numbers)
    settings = [dpm.ScaledSetting(ref_id=ref, data=[7.0]) for ref in range(1, len(drfs) + 1)]
    [reply] = pair.send(
        dpm.ApplySettingsRequest(user_name="op", list_id=lid, scaled_array=settings)
    )
    assert isinstance(reply, dpm.ApplySettingsReply)
    statuses = {drfs[s.ref_id - 1]: s.status for s in reply.status}
    assert statuses == {drf: DPM_PRIV.status if drf in denied else 0 for drf in drfs}
    assert device(pair.model, "G:AMANDA").setting_numbers == before
    assert device(pair.model, "Z:ACLTST").setting_numbers == [7.0]
