"""A value the model cannot hold breaks no one: a real simulated DPM, a real KDC, two clients.

The attack: set G:AMANDA's raw setting to the bytes of a float32 NaN (or
N:HBLK2V's alarm minimum to NaN), after which every read of the device
raised inside the server and dropped every client that asked. Now the
setting is ``DIO_SCALEFAIL``; and were such a value held anyway, a read of
it is an error reading of that entry while the connection goes on.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Iterator

import pytest

from acnet_proto.pc import dpm
from acnet_proto.plans.settings import WriteBatch, WritePlan
from acnet_proto.sim import SettingsPolicy
from acnet_proto.status import Status
from tests.support.peers import apply_by_hand
from tests.support.servers.kdc import KDC

pytest.importorskip("gssapi")
from acnet_proto.adapters.dpm.threaded import DPMBackend
from acnet_proto.adapters.kerberos import KerberosAuth
from acnet_proto.adapters.sim.dpm import SimServer

pytestmark = pytest.mark.integration

ROLE = "testing"
POLICY = SettingsPolicy.from_toml(f'default_roles = ["{ROLE}"]\n[roles.{ROLE}]\nallow = ["*"]\n')
SCALEFAIL = Status.from_name("DIO_SCALEFAIL")
WAIT = 10.0  # generous: the machine is shared
READS = ["G:AMANDA", "G:AMANDA.RAW", "G:AMANDA.PRIMARY", "N:HBLK2V.ANALOG{0:20}.RAW"]


@pytest.fixture(scope="module")
def sim(start_sim: Callable[..., SimServer], kdc: KDC) -> SimServer:
    return start_sim(keytab=kdc.keytab, policy=POLICY)


@pytest.fixture
def writer(sim: SimServer) -> Iterator[DPMBackend]:
    with DPMBackend(sim.host, sim.port, auth=KerberosAuth(), role=ROLE) as backend:
        yield backend


@pytest.fixture
def reader(sim: SimServer) -> Iterator[DPMBackend]:
    with DPMBackend(sim.host, sim.port) as backend:
        yield backend


def rogue_write(sim: SimServer, drf: str, value: float) -> Status:
    """Set ``drf`` to the scaled ``value`` as sent, not finite or not: our client refuses such
    a value before it reaches the wire, a client of the lab's protocol need not."""
    batch = WriteBatch([(drf, 0.0)], ROLE, "rogue")
    batch.structs = [("scaled", dpm.ScaledSetting(ref_id=1, data=[value]))]
    plan = WritePlan(batch, KerberosAuth().context, enabled=False)
    apply_by_hand(sim, plan, batch)
    (result,) = batch.write_results()
    return Status(result.facility_code, result.error_code)


def check_everyone_reads(reader: DPMBackend, writer: DPMBackend, block: object) -> None:
    for client in (reader, writer):
        after = client.get_many(READS, timeout=WAIT)
        assert all(r.is_success for r in after), after
    # the reading moves with its wave; the alarm block does not
    assert reader.get("N:HBLK2V.ANALOG{0:20}.RAW", timeout=WAIT).value == block


@pytest.mark.parametrize(
    ("drf", "value"),
    [
        ("G:AMANDA.SETTING.RAW", struct.pack("<f", math.nan)),
        ("G:AMANDA.SETTING.RAW", struct.pack("<f", -math.inf)),
        ("N:HBLK2V.ANALOG{2:4}.RAW", struct.pack("<f", math.nan)),
    ],
)
def test_raw_bytes_that_are_not_finite_are_refused_and_others_keep_reading(
    writer: DPMBackend, reader: DPMBackend, drf: str, value: bytes
) -> None:
    block = reader.get("N:HBLK2V.ANALOG{0:20}.RAW", timeout=WAIT).value
    result = writer.write(drf, value, timeout=WAIT)
    assert not result.success
    assert Status(result.facility_code, result.error_code) == SCALEFAIL, result
    check_everyone_reads(reader, writer, block)


@pytest.mark.parametrize(
    ("drf", "value"),
    [("G:AMANDA.SETTING", math.inf), ("N:HBLK2V.ANALOG.MIN", math.nan), ("Z:PSTEST", math.nan)],
)
def test_scaled_values_that_are_not_finite_are_refused_and_others_keep_reading(
    sim: SimServer, writer: DPMBackend, reader: DPMBackend, drf: str, value: float
) -> None:
    block = reader.get("N:HBLK2V.ANALOG{0:20}.RAW", timeout=WAIT).value
    assert rogue_write(sim, drf, value) == SCALEFAIL
    check_everyone_reads(reader, writer, block)
    assert reader.get(drf.split(".")[0] + ".RAW", timeout=WAIT).is_success


def test_a_value_held_anyway_is_an_error_reading_of_its_entry_only(
    sim: SimServer, reader: DPMBackend
) -> None:
    device = sim.model.device("G:AMANDA")
    assert device is not None
    held = device.setting_numbers[0]
    device.setting_numbers[0] = math.nan  # what no setting can do: the defense behind it
    try:
        amanda, acltst = reader.get_many(["G:AMANDA.RAW", "Z:ACLTST"], timeout=WAIT)
    finally:
        device.setting_numbers[0] = held
    assert amanda.status == SCALEFAIL, amanda
    assert acltst.is_success, acltst
    assert reader.get("G:AMANDA.RAW", timeout=WAIT).is_success  # the connection went on
