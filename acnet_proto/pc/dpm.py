"""The DPM protocol: a class per message and struct of ``protos/pc/dpm.json``.

``Foo_request`` is ``FooRequest``, ``Foo_reply`` is ``FooReply``, ``Foo_struct``
is ``Foo``; attributes are the wire field names in snake_case. Requests and
replies have separate id spaces: decode with :func:`decode_request` on the
server side and :func:`decode_reply` on the client side.

>>> from acnet_proto.pc import dpm
>>> dpm.encode(dpm.StopListRequest(list_id=48813)).hex()
'53444402510314b13a703a1253a9510212e8201300bead'
"""

from acnet_proto.pc.sdd import Codec

codec = Codec.load("dpm")
encode = codec.encode
decode_request = codec.decode_request
decode_reply = codec.decode_reply
PROTOCOL_ID = codec.schema.protocol_id

globals().update({cls.__name__: cls for cls in codec.classes.values()})
__all__ = ["PROTOCOL_ID", "codec", "decode_reply", "decode_request", "encode"]
__all__ += sorted(cls.__name__ for cls in codec.classes.values())
