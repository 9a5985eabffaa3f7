"""The command-line tools and the demo.

- :mod:`~acnet_proto.adapters.cli.main`: the entry points, ``acnet-proto``
  and ``acget``/``acput``/``acmonitor``/``acinfo``.
- :mod:`~acnet_proto.adapters.cli.get`, :mod:`~acnet_proto.adapters.cli.put`,
  :mod:`~acnet_proto.adapters.cli.monitor`, :mod:`~acnet_proto.adapters.cli.info`:
  the tools; :mod:`~acnet_proto.adapters.cli.serve` (``sim``, ``record``),
  :mod:`~acnet_proto.adapters.cli.decode`, :mod:`~acnet_proto.adapters.cli.demo`.
- What they share: :mod:`~acnet_proto.adapters.cli.exits` (exit codes, one
  error line), :mod:`~acnet_proto.adapters.cli.options`,
  :mod:`~acnet_proto.adapters.cli.drfs` (checking DRFs),
  :mod:`~acnet_proto.adapters.cli.connect` (opening the backend),
  :mod:`~acnet_proto.adapters.cli.simulators` (``--sim``),
  :mod:`~acnet_proto.adapters.cli.values` (what acput sends),
  :mod:`~acnet_proto.adapters.cli.output` (text, json, csv).
"""
