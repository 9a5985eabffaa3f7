"""The PC/SDD binary format, compiled from the message catalogues in ``protos/pc``.

One module per protocol: :mod:`~acnet_proto.pc.dpm` (DPM over TCP) and
:mod:`~acnet_proto.pc.daqdata` (DAQData, what DMQ carries). Each has a class
per message, ``encode`` and ``decode_request``/``decode_reply``; every
message is a :class:`Message`. :mod:`~acnet_proto.pc.sdd` is the codec
itself, ``_schema`` the catalogues as data.
"""

from acnet_proto.pc._message import Message

__all__ = ["Message"]
