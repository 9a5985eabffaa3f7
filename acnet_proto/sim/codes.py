"""The ACNET statuses the simulator answers with, by name.

Every refusal is a real ACNET status (``protos/acnet-status-codes.json``);
which one a request gets, and why, is in :mod:`acnet_proto.sim.binding`
(reading) and :mod:`acnet_proto.sim.writes` (setting).
"""

from __future__ import annotations

from acnet_proto.status import Status


def _status(name: str) -> int:
    return Status.from_name(name).status


DPM_BAD_REQUEST = _status("DPM_BAD_REQUEST")


DPM_BAD_EVENT = _status("DPM_BAD_EVENT")


# the real DPM answers a device it cannot find with this warning, and no data
DPM_PEND = _status("DPM_PEND")


DBM_NOPROP = _status("DBM_NOPROP")


DPM_NO_SUCH_FIELD = _status("DPM_NO_SUCH_FIELD")


DPM_OUT_OF_BOUNDS = _status("DPM_OUT_OF_BOUNDS")


DPM_BAD_RANGE = _status("DPM_BAD_RANGE")


DPM_BAD_FRAMING = _status("DPM_BAD_FRAMING")


DPM_NO_SCALE = _status("DPM_NO_SCALE")


DPM_ILLFTD = _status("DPM_ILLFTD")


DPM_NOT_YET = _status("DPM_NOT_YET")


DIO_SETONLY = _status("DIO_SETONLY")


DIO_READONLY = _status("DIO_READONLY")


DPM_BAD_LENGTH = _status("DPM_BAD_LENGTH")


DIO_INVDATA = _status("DIO_INVDATA")


DIO_RANGE = _status("DIO_RANGE")


# a value the device's raw type cannot hold (beyond its range, NaN into an integer), or a
# control ordinal beyond the device's table
DIO_SCALEFAIL = _status("DIO_SCALEFAIL")
