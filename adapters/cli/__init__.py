"""The command-line tools (:mod:`~acnet_proto.adapters.cli.main`: ``acnet-proto``,
``acget``, ``acput``, ``acmonitor``, ``acinfo``) and the demo
(:mod:`~acnet_proto.adapters.cli.demo`)."""
