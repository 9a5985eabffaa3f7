"""The simulator's pure half: a device model, and what the simulated servers decide.

Nothing here opens a socket or reads a clock: the servers in
``acnet_proto.adapters.sim`` move the bytes and the timers, and ask these
modules everything else.

- :mod:`~acnet_proto.sim.model`: :class:`DeviceModel`, the devices one server shares;
  its parts :mod:`~acnet_proto.sim.devices`, :mod:`~acnet_proto.sim.binding`,
  :mod:`~acnet_proto.sim.writes`, :mod:`~acnet_proto.sim.loader` and
  :mod:`~acnet_proto.sim.codes`;
- :mod:`~acnet_proto.sim.policy` and :mod:`~acnet_proto.sim.settings`: who may set
  what, and the server's half of DPM's Kerberos settings flow;
- :mod:`~acnet_proto.sim.dmq`: the DMQ server's jobs.
"""

from acnet_proto.sim.binding import MIN_PERIOD_US, Entry, RequestRejected, status_reply
from acnet_proto.sim.devices import (
    STATUS_BITS,
    AnalogAlarmBlock,
    BasicStatus,
    BasicStatusBit,
    DigitalAlarmBlock,
    Kind,
    Motion,
    SimDevice,
)
from acnet_proto.sim.loader import DeviceModelError
from acnet_proto.sim.model import DeviceModel
from acnet_proto.sim.policy import SettingsPolicy, SettingsRole
from acnet_proto.sim.writes import CONTROL_COMMANDS

__all__ = [
    "CONTROL_COMMANDS",
    "MIN_PERIOD_US",
    "STATUS_BITS",
    "AnalogAlarmBlock",
    "BasicStatus",
    "BasicStatusBit",
    "DeviceModel",
    "DeviceModelError",
    "DigitalAlarmBlock",
    "Entry",
    "Kind",
    "Motion",
    "RequestRejected",
    "SettingsPolicy",
    "SettingsRole",
    "SimDevice",
    "status_reply",
]
