"""SSH to ACNET hosts: commands, port forwards, SFTP and ``acl``, through jump hosts.

::

    from acnet_proto.adapters.ssh import SSHClient, SSHHop

    with SSHClient(["outland.fnal.gov", "clx01.fnal.gov"]) as ssh:  # Kerberos on both hops
        print(ssh.exec("hostname").stdout)
        print(ssh.acl("read M:OUTTMP"))                             # M:OUTTMP = 41.7 DegF
        with ssh.acl_session() as acl:
            print(acl.send("read M:OUTTMP"))

Import from here; the modules hold one concern each:

* ``client``: :class:`SSHHop`, :class:`SSHClient` (the chain of hops, logins,
  commands, one-shot ``acl``) and :class:`CommandResult`.
* ``tunnel``: :class:`Tunnel`, a local port forward.
* ``process``: :class:`RemoteProcess`, a command kept running, and
  :class:`ACLSession`, an ``acl`` kept running on one.
* ``channel``: the low-level helpers all of them drive channels with
  (deadlines, reads, requests, closing).
* ``hostkeys``: which host keys a client trusts (``known_hosts``), as pure
  functions; :data:`ACCEPT_ANY` turns checking off.
* ``errors``: :class:`SSHError` and its children (:class:`SSHHostKeyError`
  for a refused host key), all :class:`~acnet_proto.errors.AcnetProtoError`.
"""

from acnet_proto.adapters.ssh.client import CommandResult, SFTPSession, SSHClient, SSHHop
from acnet_proto.adapters.ssh.errors import (
    SSHAuthenticationError,
    SSHCommandError,
    SSHConnectionError,
    SSHError,
    SSHHostKeyError,
    SSHTimeoutError,
)
from acnet_proto.adapters.ssh.hostkeys import ACCEPT_ANY
from acnet_proto.adapters.ssh.process import ACLSession, RemoteProcess
from acnet_proto.adapters.ssh.tunnel import Tunnel

__all__ = [
    "ACCEPT_ANY",
    "ACLSession",
    "CommandResult",
    "RemoteProcess",
    "SFTPSession",
    "SSHAuthenticationError",
    "SSHClient",
    "SSHCommandError",
    "SSHConnectionError",
    "SSHError",
    "SSHHop",
    "SSHHostKeyError",
    "SSHTimeoutError",
    "Tunnel",
]
