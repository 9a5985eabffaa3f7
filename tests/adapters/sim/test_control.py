"""Control and status end to end: our client against the simulated DPM and DevDB over loopback.

The simulator holds the session KDC's keytab and its default policy (every
authenticated principal holds ``testing``, which may set ``Z:*``). Z:ACLTST
has the lab's 12-command table and its four status bits (no remote bit);
Z:PSTEST the standard table and all five bits. The DevDB serves the DPM's
model, so both describe the same devices.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

import acnet_proto
from acnet_proto.api.device import BasicControl, Device, Verify
from acnet_proto.errors import DeviceError
from acnet_proto.status import Status
from tests.support.servers.kdc import KDC

pytest.importorskip("gssapi")
from acnet_proto.adapters.dpm.threaded import DPMBackend
from acnet_proto.adapters.kerberos import KerberosAuth
from acnet_proto.adapters.sim.devdb import DevDBSimServer
from acnet_proto.adapters.sim.dpm import SimServer

pytestmark = pytest.mark.integration

QUICK = Verify(delay=0)


@pytest.fixture(scope="module")
def kdc_sim(start_sim: Callable[..., SimServer], kdc: KDC) -> SimServer:
    return start_sim(keytab=kdc.keytab)


@pytest.fixture
def backend(kdc_sim: SimServer) -> Iterator[DPMBackend]:
    with DPMBackend(kdc_sim.host, kdc_sim.port, auth=KerberosAuth(), role="testing") as b:
        yield b


@pytest.fixture
def sim(kdc_sim: SimServer) -> Iterator[SimServer]:
    """The simulator, with every device's status as the model file says when the test ends."""
    model = kdc_sim.model
    saved = {name: model.device(name).status.states for name in ("Z:ACLTST", "Z:PSTEST")}
    yield kdc_sim
    for name, states in saved.items():
        for attribute, state in states.items():
            setattr(model.device(name).status, attribute, state)


@pytest.mark.parametrize(
    ("on", "off", "field"),
    [
        (BasicControl.ON, BasicControl.OFF, "ON"),
        (BasicControl.POSITIVE, BasicControl.NEGATIVE, "POSITIVE"),
        (BasicControl.RAMP, BasicControl.DC, "RAMP"),
    ],
)
def test_pairs_toggle_their_bit(
    sim: SimServer, backend: DPMBackend, on: BasicControl, off: BasicControl, field: str
) -> None:
    acltst = Device("Z:ACLTST", backend)
    cleared = acltst.control(off, verify=QUICK)
    assert (cleared.ok, cleared.verified, cleared.readback) == (True, True, False)
    assert acltst.status(field=field) is False
    assert acltst.control(on, verify=QUICK).verified is True
    assert acltst.status()[field.lower()] is True


@pytest.mark.parametrize("command", [BasicControl.LOCAL, BasicControl.REMOTE, BasicControl.TRIP])
def test_local_remote_and_trip_land_on_test_commands(
    sim: SimServer, backend: DPMBackend, command: BasicControl
) -> None:
    acltst = Device("Z:ACLTST", backend)
    before = acltst.status()
    assert "remote" not in before
    result = acltst.control(command)
    assert result.ok, result.message
    assert acltst.status() == before
    assert sim.model.device("Z:ACLTST").status.remote is None


def test_an_ordinal_beyond_the_table_is_refused_scalefail(
    sim: SimServer, backend: DPMBackend
) -> None:
    before = Device("Z:ACLTST", backend).status()
    result = backend.write("Z|ACLTST", 25)
    assert not result.ok
    assert Status(result.facility_code, result.error_code).name == "DIO_SCALEFAIL"
    assert Device("Z:ACLTST", backend).status() == before


def test_the_absent_remote_bit_cannot_be_read(sim: SimServer, backend: DPMBackend) -> None:
    with pytest.raises(DeviceError) as missing:
        Device("Z:ACLTST", backend).status(field="REMOTE")
    assert "DPM_NO_SUCH_FIELD" in str(missing.value)
    assert backend.read("Z:ACLTST.STATUS.RAW") == (0x1 | 0x2 | 0x8).to_bytes(2, "little")


def test_the_standard_table_moves_remote_and_ready(sim: SimServer, backend: DPMBackend) -> None:
    pstest = Device("Z:PSTEST", backend)
    local = pstest.control(BasicControl.LOCAL, verify=QUICK)
    assert (local.verified, local.readback) == (True, False)
    trip = pstest.control(BasicControl.TRIP, verify=QUICK)
    assert (trip.verified, trip.readback) == (True, False)
    assert pstest.status() == {
        "on": True, "ready": False, "remote": False, "positive": True, "ramp": False,
    }  # fmt: skip
    assert pstest.control(BasicControl.REMOTE, verify=QUICK).verified is True
    assert pstest.reset(verify=QUICK).verified is True


def test_devdb_says_what_the_dpm_does(sim: SimServer) -> None:
    with (
        DevDBSimServer(sim.model) as devdb_sim,
        acnet_proto.devdb(devdb_sim.host, devdb_sim.port) as db,
    ):
        info = db.get_device_info(["Z:ACLTST", "Z:PSTEST"])
    acltst, pstest = info["Z:ACLTST"], info["Z:PSTEST"]
    assert [c.value for c in acltst.control] == [3, 1, 2, 4, 16, 5, 6, 8, 256, 257, 258, 259]
    assert [(b.short_name, b.mask) for b in acltst.status_bits] == [
        ("OnOff", 0x1), ("Ready", 0x2), ("Polarity", 0x8), ("Ramp", 0x200),
    ]  # fmt: skip
    assert [c.short_name for c in pstest.control] == [c.name for c in BasicControl]
    assert [b.mask for b in pstest.status_bits] == [0x1, 0x2, 0x4, 0x8, 0x10]
