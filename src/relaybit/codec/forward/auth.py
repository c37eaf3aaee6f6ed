"""The Forward secure handshake digests (pure; test vectors in FORWARD_PROTOCOL.md).

All inputs are ``bytes``; digests are lowercase hex SHA-512 as ASCII bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping

REASON_SHARED_KEY = b"shared_key mismatch"
REASON_USER = b"username/password mismatch"


def _sha512_hex(*parts: bytes) -> bytes:
    h = hashlib.sha512()
    for part in parts:
        h.update(part)
    return h.hexdigest().encode("ascii")


def ping_digest(salt: bytes, client_hostname: bytes, nonce: bytes, shared_key: bytes) -> bytes:
    """``sha512_hex(salt + client_hostname + nonce + shared_key)``."""
    return _sha512_hex(salt, client_hostname, nonce, shared_key)


def pong_digest(salt: bytes, server_hostname: bytes, nonce: bytes, shared_key: bytes) -> bytes:
    """``sha512_hex(salt + server_hostname + nonce + shared_key)``."""
    return _sha512_hex(salt, server_hostname, nonce, shared_key)


def password_digest(auth_salt: bytes, username: bytes, password: bytes) -> bytes:
    """``sha512_hex(auth_salt + username + password)``."""
    return _sha512_hex(auth_salt, username, password)


def new_nonce() -> bytes:
    """16 random bytes (a server's HELO nonce or user-auth salt)."""
    return secrets.token_bytes(16)


def new_salt() -> bytes:
    """A client's shared-key salt: 32 ASCII hex characters."""
    return secrets.token_hex(16).encode("ascii")


def same(a: bytes, b: bytes) -> bool:
    """Constant-time comparison of two digests."""
    return hmac.compare_digest(a, b)


def check_ping(
    *,
    nonce: bytes,
    auth_salt: bytes,
    shared_key: bytes,
    users: Mapping[bytes, bytes],
    hostname: bytes,
    salt: bytes,
    digest: bytes,
    username: bytes,
    user_digest: bytes,
) -> bytes | None:
    """Verify a PING; returns ``None`` when accepted, else the reason (bytes)."""
    if not same(ping_digest(salt, hostname, nonce, shared_key), digest):
        return REASON_SHARED_KEY
    if users:
        password = users.get(username)
        if password is None or not same(
            password_digest(auth_salt, username, password), user_digest
        ):
            return REASON_USER
    return None
