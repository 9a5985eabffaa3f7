"""The DPM conversation's states and the tables of legal transitions.

Three machines run side by side on one connection:

* the **connection**: handshake, waiting for the list id, open, closed, error;
* the **list** the connection owns: idle, entries added, started, stopped;
* **settings**: none, service name asked, context in progress, enabled.

Each table maps ``(state, command)`` to the next state. A command missing
from a table is illegal in that state. Both roles use the same tables: a
client *sending* ``StartList`` and a server *receiving* it make the same move.
Commands are named by their catalogue name (``"StartList_request"``); a few
moves that are not one message are spelled in lower case (``"handshake"``,
``"peer_closed"``, ``"local_closed"``).

The engine looks moves up in ``CONNECTION_MOVES``, ``LIST_MOVES`` and
``SETTINGS_MOVES``: the same tables, with each move that is one message also
keyed by its class, so a message is matched without building its name.
"""

from __future__ import annotations

import enum
from typing import TypeVar

from acnet_proto.pc import dpm

__all__ = [
    "CONNECTION_MOVES",
    "CONNECTION_TRANSITIONS",
    "LIST_MOVES",
    "LIST_TRANSITIONS",
    "SETTINGS_MOVES",
    "SETTINGS_TRANSITIONS",
    "ConnectionState",
    "ListState",
    "Role",
    "SettingsState",
]


class Role(enum.Enum):
    CLIENT = "client"
    SERVER = "server"


class _State(enum.Enum):
    """A state: a singleton compared by identity, so hashed by identity too (in C, where
    Enum hashes its name in Python, and the engine looks a state up on every message)."""

    __hash__ = object.__hash__


class ConnectionState(_State):
    AWAITING_HANDSHAKE = "awaiting handshake"
    AWAITING_LIST_ID = "awaiting list id"
    OPEN = "open"
    CLOSED = "closed"
    ERROR = "error"


class ListState(_State):
    IDLE = "idle"
    ENTRIES_ADDED = "entries added"
    STARTED = "started"
    STOPPED = "stopped"


class SettingsState(_State):
    NONE = "none"
    SERVICE_NAME_ASKED = "service name asked"
    CONTEXT_IN_PROGRESS = "context in progress"
    ENABLED = "enabled"


_C = ConnectionState
CONNECTION_TRANSITIONS: dict[tuple[ConnectionState, str], ConnectionState] = {
    (_C.AWAITING_HANDSHAKE, "handshake"): _C.AWAITING_LIST_ID,
    (_C.AWAITING_LIST_ID, "OpenList_reply"): _C.OPEN,
}
# Closing is legal from every live state; a closed or broken connection stays so.
for _state in (_C.AWAITING_HANDSHAKE, _C.AWAITING_LIST_ID, _C.OPEN):
    CONNECTION_TRANSITIONS[(_state, "peer_closed")] = _C.CLOSED
    CONNECTION_TRANSITIONS[(_state, "local_closed")] = _C.CLOSED

_L = ListState
LIST_TRANSITIONS: dict[tuple[ListState, str], ListState] = {
    (_L.IDLE, "AddToList_request"): _L.ENTRIES_ADDED,
    (_L.ENTRIES_ADDED, "AddToList_request"): _L.ENTRIES_ADDED,
    (_L.STOPPED, "AddToList_request"): _L.ENTRIES_ADDED,
    (_L.ENTRIES_ADDED, "RemoveFromList_request"): _L.ENTRIES_ADDED,
    (_L.STOPPED, "RemoveFromList_request"): _L.STOPPED,
    (_L.ENTRIES_ADDED, "StartList_request"): _L.STARTED,
    (_L.STOPPED, "StartList_request"): _L.STARTED,
    (_L.IDLE, "StopList_request"): _L.IDLE,
    (_L.ENTRIES_ADDED, "StopList_request"): _L.ENTRIES_ADDED,
    (_L.STARTED, "StopList_request"): _L.STOPPED,
    (_L.STOPPED, "StopList_request"): _L.STOPPED,
    (_L.IDLE, "ClearList_request"): _L.IDLE,
    (_L.ENTRIES_ADDED, "ClearList_request"): _L.IDLE,
    (_L.STARTED, "ClearList_request"): _L.IDLE,
    (_L.STOPPED, "ClearList_request"): _L.IDLE,
}

_S = SettingsState
SETTINGS_TRANSITIONS: dict[tuple[SettingsState, str], SettingsState] = {
    # An empty Authenticate token asks for the service name ...
    (_S.NONE, "Authenticate_request:empty"): _S.SERVICE_NAME_ASKED,
    (_S.SERVICE_NAME_ASKED, "Authenticate_reply"): _S.CONTEXT_IN_PROGRESS,
    # ... then GSS tokens go back and forth until the context is complete ...
    (_S.CONTEXT_IN_PROGRESS, "Authenticate_request:token"): _S.CONTEXT_IN_PROGRESS,
    (_S.CONTEXT_IN_PROGRESS, "Authenticate_reply"): _S.CONTEXT_IN_PROGRESS,
    (_S.CONTEXT_IN_PROGRESS, "EnableSettings_request"): _S.CONTEXT_IN_PROGRESS,
    # ... and a ref-0 Status_reply to EnableSettings decides.
    (_S.CONTEXT_IN_PROGRESS, "enable_accepted"): _S.ENABLED,
    (_S.CONTEXT_IN_PROGRESS, "enable_refused"): _S.NONE,
    # A refused GSS token (a non-zero ref-0 Status_reply) ends the attempt.
    (_S.SERVICE_NAME_ASKED, "auth_refused"): _S.NONE,
    (_S.CONTEXT_IN_PROGRESS, "auth_refused"): _S.NONE,
    # Starting over is always allowed: a client may re-authenticate.
    (_S.ENABLED, "Authenticate_request:empty"): _S.SERVICE_NAME_ASKED,
    (_S.SERVICE_NAME_ASKED, "Authenticate_request:empty"): _S.SERVICE_NAME_ASKED,
    (_S.CONTEXT_IN_PROGRESS, "Authenticate_request:empty"): _S.SERVICE_NAME_ASKED,
}


_StateT = TypeVar("_StateT", bound=enum.Enum)


def _keyed_by_class(
    table: dict[tuple[_StateT, str], _StateT],
) -> dict[tuple[_StateT, str | type], _StateT]:
    """``table`` plus each move named after a message, keyed again by that message's class."""
    moves: dict[tuple[_StateT, str | type], _StateT] = {}
    for (state, name), new in table.items():
        moves[(state, name)] = new
        cls = dpm.codec.classes.get(name)
        if cls is not None:
            moves[(state, cls)] = new
    return moves


CONNECTION_MOVES = _keyed_by_class(CONNECTION_TRANSITIONS)
LIST_MOVES = _keyed_by_class(LIST_TRANSITIONS)
SETTINGS_MOVES = _keyed_by_class(SETTINGS_TRANSITIONS)
