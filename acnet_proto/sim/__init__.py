"""The simulator's pure half: a device model, and what the simulated servers decide.

Nothing here opens a socket or reads a clock: the servers in
``acnet_proto.adapters.sim`` move the bytes and the timers, and ask these
modules everything else.

- :mod:`~acnet_proto.sim.model`: :class:`DeviceModel`, the devices one server shares;
  its parts :mod:`~acnet_proto.sim.devices`, :mod:`~acnet_proto.sim.binding`,
  :mod:`~acnet_proto.sim.writes`, :mod:`~acnet_proto.sim.loader` and
  :mod:`~acnet_proto.sim.codes`; a device's values are
  :mod:`~acnet_proto.sim.scaling` (raw types, DEC F_floating, transforms),
  :mod:`~acnet_proto.sim.alarm_blocks` (the 20-byte blocks) and
  :mod:`~acnet_proto.sim.ramps` (ramp tables), and what a device's CONTROL
  commands do to its status bits, :mod:`~acnet_proto.sim.control`;
- :mod:`~acnet_proto.sim.history`: logged data and fast time plots, as DPM serves them;
- :mod:`~acnet_proto.sim.devdb`: the device database's view of the model;
- :mod:`~acnet_proto.sim.policy` and :mod:`~acnet_proto.sim.settings`: who may set
  what, and the server's half of DPM's Kerberos settings flow;
- :mod:`~acnet_proto.sim.dmq`: the DMQ server's jobs.
"""

from acnet_proto.sim.binding import MIN_PERIOD_US, Entry, RequestRejected, status_reply
from acnet_proto.sim.control import STANDARD_COMMANDS, ControlCommand
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
from acnet_proto.sim.ramps import RampTable
from acnet_proto.sim.scaling import RawType, Scaling, ScalingError
from acnet_proto.sim.writes import CONTROL_COMMANDS

__all__ = [
    "CONTROL_COMMANDS",
    "MIN_PERIOD_US",
    "STANDARD_COMMANDS",
    "STATUS_BITS",
    "AnalogAlarmBlock",
    "BasicStatus",
    "BasicStatusBit",
    "ControlCommand",
    "DeviceModel",
    "DeviceModelError",
    "DigitalAlarmBlock",
    "Entry",
    "Kind",
    "Motion",
    "RampTable",
    "RawType",
    "RequestRejected",
    "Scaling",
    "ScalingError",
    "SettingsPolicy",
    "SettingsRole",
    "SimDevice",
    "status_reply",
]
