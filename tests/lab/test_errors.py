"""How the lab's DPM answers what it cannot do (lab-devices.md, "How the real DPM answers
errors")."""

from __future__ import annotations

import pytest

from acnet_proto.api.backend import Backend
from acnet_proto.errors import DeviceError
from acnet_proto.status import Status
from tests.lab.conftest import T, set_value

pytestmark = pytest.mark.integration

DPM_PEND = Status.from_name("DPM_PEND")
DBM_NOPROP = Status.from_name("DBM_NOPROP")
DIO_SCALEFAIL = Status.from_name("DIO_SCALEFAIL")


def test_a_device_that_does_not_exist_is_dpm_pend_with_no_data(dpm_reader: Backend) -> None:
    reading = dpm_reader.get("Z:NOTFND", T)
    assert reading.status == DPM_PEND  # 17/1: a warning...
    assert reading.value is None and not reading.ok  # ...that clients report as an error


def test_a_device_that_does_not_exist_is_an_error_reading_on_every_backend(reader: Backend) -> None:
    reading = reader.get("Z:NOTFND", T)
    assert reading.value is None and not reading.ok


def test_reading_a_device_that_does_not_exist_raises_naming_it(dpm_reader: Backend) -> None:
    with pytest.raises(DeviceError, match="Z:NOTFND"):
        dpm_reader.read("Z:NOTFND", T)


def test_the_acl_cgi_says_dbm_norec_for_a_device_that_does_not_exist(acl: Backend) -> None:
    reading = acl.get("Z:NOTFND", T)
    assert reading.is_error and "DBM_NOREC" in (reading.message or "")


def test_a_property_the_device_lacks_is_dbm_noprop(dpm_reader: Backend) -> None:
    assert dpm_reader.get("N$HBLK2V", T).status == DBM_NOPROP  # N:HBLK2V has no digital alarm


def test_a_property_the_device_lacks_is_an_error_on_every_backend(reader: Backend) -> None:
    reading = reader.get("N$HBLK2V", T)
    assert reading.is_error and reading.value is None


@pytest.mark.parametrize("target", ["N:HBLK2V.DIGITAL{0:20}.RAW", "N$HBLK2V[0:3]"])
def test_dbm_noprop_is_decided_before_any_range_check(dpm_reader: Backend, target: str) -> None:
    assert dpm_reader.get(target, T).status == DBM_NOPROP


def test_a_setting_of_a_read_only_device_is_an_error(reader: Backend) -> None:
    reading = reader.get("B_IRMS06[0]", T)  # B:IRMS06 has no setting property
    assert reading.is_error and reading.value is None


def test_the_reading_of_the_same_read_only_device_is_fine(reader: Backend) -> None:
    assert isinstance(reader.read("B:IRMS06[0]", T), float)


@pytest.mark.parametrize("ordinal", [12, 25])
def test_a_control_ordinal_beyond_the_table_is_dio_scalefail(writer: Backend, ordinal: int) -> None:
    result = set_value(writer, "Z&ACLTST", ordinal)  # Z:ACLTST's table holds ordinals 0..11
    assert result.status == DIO_SCALEFAIL
