"""``ssl.SSLContext`` objects from the ``tls.*`` keys, for clients and servers.

Client side: ``tls.verify`` (on by default) with ``tls.ca_file``/``tls.ca_path``
(the system store otherwise), ``tls.verify_hostname``, a client certificate
``tls.crt_file``/``tls.key_file`` (``tls.key_passwd``).  SNI is ``tls.vhost`` or
the node's host (:func:`server_hostname`).  Server side: ``tls.crt_file`` and
``tls.key_file`` are required; with ``tls.verify on`` and a ``tls.ca_file`` or
``tls.ca_path`` (or ``tls.verify_client_cert on``) the client must present a
certificate signed by that CA.

Contexts are cached per (settings, base directory).
"""

from __future__ import annotations

import functools
import ssl
from pathlib import Path

from relaybit.errors import ConfigError
from relaybit.upstream.node import TLSSettings


def _path(value: str | None, base_dir: Path | None) -> str | None:
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return str(path)


def _load_chain(ctx: ssl.SSLContext, tls: TLSSettings, base_dir: Path | None) -> None:
    crt, key = _path(tls.crt_file, base_dir), _path(tls.key_file, base_dir)
    if not crt:
        return
    try:
        ctx.load_cert_chain(crt, key, password=tls.key_passwd)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot load the certificate {crt} / key {key}: {exc}", key="tls.crt_file"
        ) from None


def _load_ca(ctx: ssl.SSLContext, tls: TLSSettings, base_dir: Path | None) -> bool:
    cafile, capath = _path(tls.ca_file, base_dir), _path(tls.ca_path, base_dir)
    if not cafile and not capath:
        return False
    try:
        ctx.load_verify_locations(cafile=cafile, capath=capath)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot load the CA {cafile or capath}: {exc}",
            key="tls.ca_file" if cafile else "tls.ca_path",
        ) from None
    return True


_VERSIONS = {
    "tlsv1.1": ssl.TLSVersion.TLSv1_1,
    "tlsv1.2": ssl.TLSVersion.TLSv1_2,
    "tlsv1.3": ssl.TLSVersion.TLSv1_3,
}


def _limit(ctx: ssl.SSLContext, tls: TLSSettings) -> None:
    """``tls.min_version``, ``tls.max_version`` and ``tls.ciphers``."""
    if tls.min_version:
        ctx.minimum_version = _VERSIONS[tls.min_version]
    if tls.max_version:
        ctx.maximum_version = _VERSIONS[tls.max_version]
    if tls.ciphers:
        try:
            ctx.set_ciphers(tls.ciphers)
        except ssl.SSLError:
            raise ConfigError(
                f"no cipher of {tls.ciphers!r} is available", key="tls.ciphers"
            ) from None


@functools.lru_cache(maxsize=64)
def _client_context(tls: TLSSettings, base_dir: Path | None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    _limit(ctx, tls)
    if tls.verify:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.check_hostname = tls.verify_hostname
        if not _load_ca(ctx, tls, base_dir):
            ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    _load_chain(ctx, tls, base_dir)
    return ctx


@functools.lru_cache(maxsize=64)
def _server_context(
    tls: TLSSettings, base_dir: Path | None, require_client_cert: bool | None
) -> ssl.SSLContext:
    if not tls.crt_file or not tls.key_file:
        raise ConfigError(
            "a TLS server needs both tls.crt_file and tls.key_file",
            key="tls.crt_file" if not tls.crt_file else "tls.key_file",
        )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _limit(ctx, tls)
    _load_chain(ctx, tls, base_dir)
    verify = tls.verify if require_client_cert is None else require_client_cert
    if verify and _load_ca(ctx, tls, base_dir):
        ctx.verify_mode = ssl.CERT_REQUIRED
    elif require_client_cert:
        raise ConfigError(
            "tls.verify_client_cert needs tls.ca_file or tls.ca_path", key="tls.verify_client_cert"
        )
    return ctx


def client_context(tls: TLSSettings, base_dir: Path | str | None = None) -> ssl.SSLContext | None:
    """The client context for these settings, or None when ``tls`` is off.

    Raises :class:`ConfigError` naming the key when a file cannot be loaded.
    """
    if not tls.enabled:
        return None
    return _client_context(tls, Path(base_dir) if base_dir is not None else None)


def server_context(
    tls: TLSSettings,
    base_dir: Path | str | None = None,
    *,
    require_client_cert: bool | None = None,
) -> ssl.SSLContext | None:
    """The server context for these settings, or None when ``tls`` is off.

    ``require_client_cert`` (Fluent Bit's ``tls.verify_client_cert``): None keeps
    the older rule (``tls.verify`` on and a CA given), True/False decide.
    """
    if not tls.enabled:
        return None
    base = Path(base_dir) if base_dir is not None else None
    return _server_context(tls, base, require_client_cert)


def new_server_context(
    tls: TLSSettings,
    base_dir: Path | str | None = None,
    *,
    require_client_cert: bool | None = None,
) -> ssl.SSLContext | None:
    """As :func:`server_context`, but a context of its own (not the cached one), for a
    caller that configures it further (ALPN, versions, ciphers)."""
    if not tls.enabled:
        return None
    base = Path(base_dir) if base_dir is not None else None
    return _server_context.__wrapped__(tls, base, require_client_cert)


def server_hostname(tls: TLSSettings, host: str) -> str | None:
    """The SNI name to send: ``tls.vhost``, else the node's host; None without TLS."""
    if not tls.enabled:
        return None
    return tls.vhost or host
