"""The DAQData protocol that DMQ speaks over AMQP (``protos/pc/daqdata.json``).

Naming as in :mod:`acnet_proto.pc.dpm`. ``BasicControl`` is an
``IntEnum`` whose values are the wire values of the reference encoder.
"""

from acnet_proto.pc.sdd import Codec

codec = Codec.load("daqdata")
encode = codec.encode
decode_request = codec.decode_request
decode_reply = codec.decode_reply
PROTOCOL_ID = codec.schema.protocol_id

globals().update({cls.__name__: cls for cls in codec.classes.values()})
globals().update({e.__name__: e for e in codec.enums.values()})
__all__ = ["PROTOCOL_ID", "codec", "decode_reply", "decode_request", "encode"]
__all__ += sorted(cls.__name__ for cls in codec.classes.values())
__all__ += sorted(e.__name__ for e in codec.enums.values())
