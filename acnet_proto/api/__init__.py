"""The user API every backend shares, with no I/O of its own.

- :mod:`~acnet_proto.api.backend`: :class:`Backend` (and its async twin), the
  subscription and its queue: what every backend offers;
- :mod:`~acnet_proto.api.device`: :class:`Device` and its kinds, one DRF checked once;
- :mod:`~acnet_proto.api.verify`: readback verification of a setting;
- :mod:`~acnet_proto.api.alarms`: alarm blocks, read-modify-write;
- :mod:`~acnet_proto.api.digital_status`: a status word and its bits;
- :mod:`~acnet_proto.api.auth`: :class:`Auth`, :class:`JWTAuth` (Kerberos is an adapter);
- :mod:`~acnet_proto.api.config`: where a backend connects, from arguments and the
  environment.
"""
