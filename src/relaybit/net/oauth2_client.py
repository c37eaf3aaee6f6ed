"""OAuth2 client credentials for outgoing requests (Fluent Bit's ``oauth2.*`` of out_http).

:class:`TokenSource` asks the token endpoint for an access token
(``grant_type=client_credentials``), keeps it until shortly before it expires
(``expires_in`` less a tenth, less ``oauth2.refresh_skew_seconds``, as Fluent
Bit), and asks again when the caller says a request was answered 401
(:meth:`TokenSource.invalidate`).  Client authentication, as
``oauth2.auth_method``:

- ``basic``: ``client_id:client_secret`` as HTTP basic auth;
- ``post``: ``client_id`` and ``client_secret`` in the form body;
- ``private_key_jwt``: ``client_id`` and a ``client_assertion`` JWT (RS256,
  signed with ``oauth2.jwt_key_file``; ``iss``/``sub`` the client id, ``aud``
  ``oauth2.jwt_aud`` or the token URL, ``iat``/``exp`` ``oauth2.jwt_ttl_seconds``
  apart, a random ``jti``; the header names the certificate of
  ``oauth2.jwt_cert_file`` by ``kid`` (its SHA-1 in upper-case hex), ``x5t``
  (SHA-1, base64url) or ``x5t#S256`` (SHA-256, base64url)), as Fluent Bit.

The client secret, the private key, the assertion and the tokens never appear
in a log line, an error or a repr.
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson

from relaybit.clock import Clock, SystemClock
from relaybit.config.origin import Origin
from relaybit.config.schema import ConfigMap, Option, Options
from relaybit.errors import ConfigError, ConfigErrors

if TYPE_CHECKING:
    import aiohttp

AUTH_METHODS = ("basic", "post", "private_key_jwt")
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

#: Fluent Bit 5.1.1's ``oauth2.*`` keys of out_http.
OAUTH2_OPTIONS = ConfigMap(
    (
        Option("oauth2.enable", "bool", False, "OAuth2 client credentials for every request"),
        Option("oauth2.token_url", "str", None, "Token endpoint URL"),
        Option("oauth2.client_id", "str", None, "OAuth2 client_id"),
        Option("oauth2.client_secret", "str", None, "OAuth2 client_secret", secret=True),
        Option("oauth2.user_agent", "str", None, "User-Agent of token requests"),
        Option("oauth2.scope", "str", None, "scope asked for"),
        Option("oauth2.audience", "str", None, "audience parameter of token requests"),
        Option("oauth2.resource", "str", None, "resource parameter of token requests"),
        Option(
            "oauth2.auth_method",
            "str",
            "basic",
            "Client authentication: basic, post or private_key_jwt",
            choices=AUTH_METHODS,
        ),
        Option("oauth2.jwt_key_file", "str", None, "private_key_jwt: PEM private key (RS256)"),
        Option("oauth2.jwt_cert_file", "str", None, "private_key_jwt: certificate of the key"),
        Option("oauth2.jwt_aud", "str", None, "private_key_jwt: aud (default: token_url)"),
        Option(
            "oauth2.jwt_header",
            "str",
            "kid",
            "private_key_jwt: header naming the certificate: kid, x5t or x5t#S256",
        ),
        Option("oauth2.jwt_ttl_seconds", "int", 300, "private_key_jwt: assertion lifetime"),
        Option(
            "oauth2.refresh_skew_seconds", "int", 60, "Refresh this long before the token expires"
        ),
        Option(
            "oauth2.timeout",
            "time",
            0.0,
            "Token request timeout (0: http.response_timeout)",
        ),
        Option("oauth2.connect_timeout", "time", 0.0, "Token request connect timeout (0: none)"),
    )
)


class OAuth2Error(Exception):
    """No access token could be had (the message holds no secret)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OAuth2Settings:
    """What a token request needs (secrets kept out of repr)."""

    token_url: str
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    user_agent: str | None = None
    scope: str | None = None
    audience: str | None = None
    resource: str | None = None
    auth_method: str = "basic"
    jwt_key: bytes | None = field(default=None, repr=False)
    jwt_thumbprint: str | None = None
    jwt_aud: str | None = None
    jwt_header: str = "kid"
    jwt_ttl: int = 300
    refresh_skew: int = 60
    timeout: float = 0.0
    connect_timeout: float = 0.0

    @classmethod
    def from_options(cls, opts: Options, section: str, base_dir: Path) -> OAuth2Settings | None:
        """The settings of ``oauth2.*`` (None when ``oauth2.enable`` is off).

        Raises ConfigErrors naming each key that is missing or wrong.
        """
        if not opts.bool("oauth2.enable"):
            return None
        errors: list[ConfigError] = []

        def fail(key: str, message: str, fallback: Origin | None = None) -> None:
            """An error at ``key``'s line (``fallback`` when the key is not written)."""
            origin = opts.origin(key) or fallback
            errors.append(ConfigError(message, origin, section=section, key=key))

        def need(key: str, why: str) -> str | None:
            value = opts.opt_str(key)
            if not value:
                fail(key, f"{key} is required {why}", opts.origin("oauth2.enable"))
            return value

        url = need("oauth2.token_url", "with oauth2.enable on") or ""
        if url and urlsplit(url).scheme not in ("http", "https"):
            fail("oauth2.token_url", f"oauth2.token_url {url!r} is not an http:// or https:// URL")
        method = opts.str("oauth2.auth_method").lower()
        client_id = need("oauth2.client_id", f"with oauth2.auth_method {method}")
        secret = None
        key_pem: bytes | None = None
        thumbprint: str | None = None
        header = opts.str("oauth2.jwt_header") or "kid"
        if method in ("basic", "post"):
            secret = need("oauth2.client_secret", f"with oauth2.auth_method {method}")
        else:
            key_file = need("oauth2.jwt_key_file", "with oauth2.auth_method private_key_jwt")
            cert_file = need("oauth2.jwt_cert_file", "with oauth2.auth_method private_key_jwt")
            if header.lower() not in ("kid", "x5t", "x5t#s256"):
                fail(
                    "oauth2.jwt_header",
                    f"oauth2.jwt_header {header!r}: expected kid, x5t or x5t#S256",
                )
            if key_file:
                # PyJWT and cryptography load only for private_key_jwt: every agent with an
                # http or es output reads this module (about 60 ms of start-up otherwise)
                from cryptography.hazmat.primitives import serialization
                from cryptography.hazmat.primitives.asymmetric import rsa

                try:
                    key_pem = (base_dir / key_file).read_bytes()
                    key = serialization.load_pem_private_key(key_pem, password=None)
                    if not isinstance(key, rsa.RSAPrivateKey):
                        raise ValueError("not an RSA key (private_key_jwt signs with RS256)")
                except (OSError, ValueError, TypeError) as exc:
                    fail(
                        "oauth2.jwt_key_file",
                        f"cannot use the private key {key_file}: "
                        + (str(exc) if "RSA" in str(exc) else type(exc).__name__),
                    )
            if cert_file:
                try:
                    thumbprint = cert_thumbprint((base_dir / cert_file).read_bytes(), header)
                except (OSError, ValueError) as exc:
                    fail("oauth2.jwt_cert_file", f"cannot read the certificate {cert_file}: {exc}")
        if errors:
            raise ConfigErrors(errors)
        return cls(
            token_url=url,
            client_id=client_id,
            client_secret=secret,
            user_agent=opts.opt_str("oauth2.user_agent"),
            scope=opts.opt_str("oauth2.scope"),
            audience=opts.opt_str("oauth2.audience"),
            resource=opts.opt_str("oauth2.resource"),
            auth_method=method,
            jwt_key=key_pem,
            jwt_thumbprint=thumbprint,
            jwt_aud=opts.opt_str("oauth2.jwt_aud"),
            jwt_header=header,
            jwt_ttl=opts.int("oauth2.jwt_ttl_seconds") or 300,
            refresh_skew=opts.int("oauth2.refresh_skew_seconds") or 60,
            timeout=opts.float("oauth2.timeout"),
            connect_timeout=opts.float("oauth2.connect_timeout"),
        )


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def cert_thumbprint(data: bytes, header: str) -> str:
    """The certificate's thumbprint as Fluent Bit writes it in ``header`` (PEM or DER)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    try:
        cert = x509.load_pem_x509_certificate(data)
    except ValueError:
        cert = x509.load_der_x509_certificate(data)
    name = header.lower()
    if name == "x5t#s256":
        return _b64url(cert.fingerprint(hashes.SHA256()))
    digest = cert.fingerprint(hashes.SHA1())
    return _b64url(digest) if name == "x5t" else digest.hex().upper()


def client_assertion(settings: OAuth2Settings, now: float) -> str:
    """The private_key_jwt assertion (RS256), as Fluent Bit builds it."""
    assert settings.jwt_key is not None and settings.jwt_thumbprint is not None
    issued = int(now)
    payload = {
        "iss": settings.client_id,
        "sub": settings.client_id,
        "aud": settings.jwt_aud or settings.token_url,
        "iat": issued,
        "exp": issued + settings.jwt_ttl,
        "jti": str(uuid.uuid4()),
    }
    headers = {"typ": "JWT", settings.jwt_header: settings.jwt_thumbprint}
    import jwt

    return jwt.encode(payload, settings.jwt_key, algorithm="RS256", headers=headers)


def token_request(settings: OAuth2Settings, now: float) -> tuple[dict[str, str], dict[str, str]]:
    """(form fields, headers) of one token request."""
    form = {"grant_type": "client_credentials"}
    for name in ("scope", "audience", "resource"):
        value = getattr(settings, name)
        if value:
            form[name] = value
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if settings.user_agent:
        headers["User-Agent"] = settings.user_agent
    method = settings.auth_method
    if method == "basic":
        pair = f"{settings.client_id}:{settings.client_secret}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
    elif method == "post":
        form["client_id"] = settings.client_id or ""
        form["client_secret"] = settings.client_secret or ""
    else:
        form["client_id"] = settings.client_id or ""
        form["client_assertion_type"] = ASSERTION_TYPE
        form["client_assertion"] = client_assertion(settings, now)
    return form, headers


@dataclass(slots=True)
class _Token:
    value: str = field(repr=False)
    refresh_at: float  # monotonic seconds; inf: until a 401


class TokenSource:
    """Access tokens of one output: cached, refreshed before expiry and after a 401."""

    def __init__(
        self,
        settings: OAuth2Settings,
        *,
        default_timeout: float | None = None,
        clock: Clock | None = None,
        logger: Any = None,
    ) -> None:
        self.settings = settings
        self._timeout = settings.timeout or default_timeout or None
        self._clock = clock or SystemClock()
        self._logger = logger
        self._token: _Token | None = None
        self._lock = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None
        self.requests = 0  #: token requests made
        parts = urlsplit(settings.token_url)
        self._where = parts.netloc or settings.token_url

    def cached(self) -> str | None:
        """The current token if it is still fresh (no I/O)."""
        token = self._token
        if token is not None and self._clock.monotonic() < token.refresh_at:
            return token.value
        return None

    async def token(self) -> str:
        """A fresh access token (from the cache, else from the token endpoint)."""
        value = self.cached()
        if value is not None:
            return value
        async with self._lock:
            value = self.cached()
            if value is None:
                value = await self._fetch()
            return value

    def invalidate(self, value: str) -> None:
        """A request with ``value`` was answered 401: the next :meth:`token` asks again."""
        if self._token is not None and self._token.value == value:
            self._token = None

    async def _fetch(self) -> str:
        import aiohttp  # the http outputs load it anyway; the option tables need not

        s = self.settings
        form, headers = token_request(s, time.time())
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(
                total=self._timeout, sock_connect=s.connect_timeout or None
            )
            self._session = aiohttp.ClientSession(timeout=timeout)
        self.requests += 1
        try:
            async with self._session.post(
                s.token_url, data=form, headers=headers, allow_redirects=False
            ) as resp:
                body = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
            raise OAuth2Error(f"token request to {self._where} failed: {reason}") from None
        if status != 200:
            raise OAuth2Error(
                f"token endpoint {self._where} answered HTTP {status}: {self._excerpt(body)}"
            )
        value, lifetime = self._parse(body)
        now = self._clock.monotonic()
        if lifetime is None:
            refresh_at = float("inf")  # no expires_in: kept until a 401
        else:
            usable = lifetime - lifetime // 10  # as Fluent Bit: a tenth off
            refresh_at = now + max(usable - s.refresh_skew, 0)
        self._token = _Token(value, refresh_at)
        if self._logger is not None:
            self._logger.info("oauth2: access token from %s retrieved", self._where)
        return value

    def _parse(self, body: bytes) -> tuple[str, int | None]:
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise OAuth2Error(f"token endpoint {self._where} answered no JSON") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("access_token"), str):
            raise OAuth2Error(f"token endpoint {self._where} answered no access_token")
        token_type = doc.get("token_type")
        if isinstance(token_type, str) and token_type.lower() != "bearer":
            raise OAuth2Error(
                f"token endpoint {self._where} answered token_type {token_type!r}, not Bearer"
            )
        expires = doc.get("expires_in")
        lifetime: int | None = None
        if (isinstance(expires, int | float) and not isinstance(expires, bool)) or (
            isinstance(expires, str) and expires.strip().isdigit()
        ):
            lifetime = int(expires)
        return doc["access_token"], lifetime

    def _excerpt(self, body: bytes) -> str:
        text = body[:200].decode("utf-8", "replace")
        secret = self.settings.client_secret
        return text.replace(secret, "***") if secret else text

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def __repr__(self) -> str:
        state = "cached" if self.cached() else "none"
        return f"<TokenSource {self._where} {self.settings.auth_method} token={state}>"
