"""The Forward connection state machine, as a table (h11 ``_state.py`` style).

Rule: everything that decides a state change lives here; the table does not know
which side we are, only the role that *acts*.  A (role, state, event kind) not
in the table is a protocol violation: a :class:`LocalProtocolError` when we do it,
a :class:`RemoteProtocolError` when the peer does.
"""

from __future__ import annotations

import enum


class Role(enum.Enum):
    CLIENT = "client"
    SERVER = "server"


class State(enum.Enum):
    START = "START"  #: nothing exchanged yet
    AWAIT_PING = "AWAIT_PING"  #: server sent HELO
    PING_RECEIVED = "PING_RECEIVED"  #: client sent PING, server must answer PONG
    ESTABLISHED = "ESTABLISHED"  #: events and acks flow
    CLOSED = "CLOSED"  #: handshake refused or peer closed
    ERROR = "ERROR"  #: a protocol error happened


C, S = Role.CLIENT, Role.SERVER

#: (who acts, state, event kind) -> next state.  Both sides share one state.
TRANSITIONS: dict[tuple[Role, State, str], State] = {
    # no handshake: the client just starts sending
    (C, State.START, "data"): State.ESTABLISHED,
    (C, State.START, "heartbeat"): State.START,
    # secure handshake
    (S, State.START, "helo"): State.AWAIT_PING,
    (C, State.AWAIT_PING, "ping"): State.PING_RECEIVED,
    (S, State.PING_RECEIVED, "pong_ok"): State.ESTABLISHED,
    (S, State.PING_RECEIVED, "pong_refused"): State.CLOSED,
    (C, State.AWAIT_PING, "heartbeat"): State.AWAIT_PING,
    # established
    (C, State.ESTABLISHED, "data"): State.ESTABLISHED,
    (C, State.ESTABLISHED, "heartbeat"): State.ESTABLISHED,
    (S, State.ESTABLISHED, "ack"): State.ESTABLISHED,
    (S, State.ESTABLISHED, "heartbeat"): State.ESTABLISHED,
}


def next_state(actor: Role, state: State, kind: str) -> State | None:
    """The state after ``actor`` does ``kind`` in ``state``, or None if illegal."""
    return TRANSITIONS.get((actor, state, kind))
