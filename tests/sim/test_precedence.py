"""The order statuses are decided in: the table of docs/simulator.md and of binding's docstring,
walked row by row against the model, so the pages and the code cannot drift apart."""

from __future__ import annotations

import json
import re

import pytest

from acnet_proto.sim import DeviceModel, RequestRejected, binding
from acnet_proto.status import Status
from tests.support import ROOT

PAGE = (ROOT / "docs" / "simulator.md").read_text(encoding="utf-8")
SECTION = PAGE[PAGE.index("## Errors, in the order they are decided") :]
ROW = re.compile(r"^\| (\d+) \| `(\w+)` \| [^|]+ \| `([^`]+)` \|(?: `([^`]+)` \|)?$", re.MULTILINE)
ROWS = [(int(n), status, drf, value) for n, status, drf, value in ROW.findall(SECTION)]
READS = [row for row in ROWS if not row[3]]
SETTINGS = [row for row in ROWS if row[3]]


def test_the_page_has_both_tables_in_order() -> None:
    assert len(READS) == 12 and len(SETTINGS) == 6
    assert [n for n, *_ in ROWS] == sorted(n for n, *_ in ROWS)


def test_the_docstring_lists_the_same_statuses_in_the_same_order() -> None:
    doc = binding.__doc__ or ""
    listed = re.findall(r"^(\d+)\s+``(\w+)``", doc, re.MULTILINE)
    assert [(int(n), name) for n, name in listed] == [(n, status) for n, status, *_ in ROWS]


@pytest.mark.parametrize(("order", "status", "drf"), [r[:3] for r in READS], ids=lambda v: str(v))
def test_each_request_row_gets_its_status(order: int, status: str, drf: str) -> None:
    with pytest.raises(RequestRejected) as info:
        DeviceModel.default().resolve(drf)
    assert Status.from_int(info.value.status).name == status


@pytest.mark.parametrize(("order", "status", "drf", "value"), SETTINGS, ids=lambda v: str(v))
def test_each_setting_row_gets_its_status(order: int, status: str, drf: str, value: str) -> None:
    model = DeviceModel.default()
    assert (
        Status.from_int(model.apply_setting(model.resolve(drf), json.loads(value))).name == status
    )


def test_a_missing_property_is_decided_before_its_range() -> None:
    """The lab's answer for an alarm block a device lacks, whatever range it is asked for."""
    model = DeviceModel.default()
    for drf in ("M:OUTTMP.DIGITAL{0:20}.RAW", "N$HBLK2V", "N$HBLK2V[0]", "B_IRMS06[0]"):
        with pytest.raises(RequestRejected) as info:
            model.resolve(drf)
        assert Status.from_int(info.value.status).name == "DBM_NOPROP", drf
