"""What every reconnecting subscription shares, with no I/O.

- :mod:`~acnet_proto.streams.reconnect`: the :class:`Reconnect` policy, the
  backoff schedule, and the :class:`Gap` a stream delivers where readings are
  lost (open as the outage begins, closed when the list runs again);
- :mod:`~acnet_proto.streams.driver`: :class:`StreamDriver`, the decisions of a
  stream whose connection died (tell the user, wait, connect, deliver the
  closed gap, give up), as steps an adapter carries out;
- :mod:`~acnet_proto.streams.staleness`: :class:`Freshness`, a stream's bound
  on how late a reading may reach user code: what to skip, and the gap that
  counts it.
"""
