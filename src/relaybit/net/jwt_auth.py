"""OAuth2 JWT bearer tokens for server inputs (Fluent Bit's ``oauth2.validate``).

A request must carry ``Authorization: Bearer <JWT>``: an RS256 token whose
header names a ``kid`` found in the JWKS fetched from ``oauth2.jwks_url``,
with a valid signature, an ``exp`` in the future, and, when configured, the
``oauth2.issuer`` (``iss``), ``oauth2.allowed_audience`` (one of ``aud``) and
one of ``oauth2.allowed_clients`` (``azp``, else ``client_id``, else
``appid``), as Fluent Bit 5.1 checks them (PyJWT does the cryptography).

The key set is fetched at start and every ``oauth2.jwks_refresh_interval``
seconds in the background; a token naming an unknown ``kid`` is refused
without a fetch (a client cannot make the agent hammer the JWKS server).
Until a first fetch succeeds every token is refused.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
import jwt

from relaybit.config.schema import ConfigMap, Option, Options
from relaybit.errors import ConfigError

#: Fluent Bit's oauth2 JWT keys for inputs (flb_oauth2_jwt.c).
OAUTH2_JWT_OPTIONS = ConfigMap(
    (
        Option(
            "oauth2.validate",
            "bool",
            False,
            "Require an OAuth2 JWT bearer token (RS256, checked against oauth2.jwks_url)",
        ),
        Option("oauth2.issuer", "str", None, "Expected 'iss' claim of the tokens"),
        Option("oauth2.jwks_url", "str", None, "URL of the JWKS holding the token signing keys"),
        Option("oauth2.allowed_audience", "str", None, "Audience a token's 'aud' must include"),
        Option(
            "oauth2.allowed_clients",
            "str",
            None,
            "Client allowed (azp, client_id or appid claim); repeat the key for several",
            multiple=True,
        ),
        Option(
            "oauth2.jwks_refresh_interval",
            "int",
            300,
            "Seconds between fetches of the JWKS",
            minimum=1,
        ),
    )
)


class JwtValidator:
    """Checks bearer tokens against a JWKS kept fresh in the background."""

    def __init__(
        self,
        jwks_url: str,
        *,
        issuer: str | None = None,
        audience: str | None = None,
        clients: list[str] | None = None,
        refresh_interval: float = 300.0,
        logger: logging.Logger | None = None,
        name: str = "",
    ) -> None:
        self.jwks_url = jwks_url
        self.issuer = issuer
        self.audience = audience
        self.clients = set(clients or ())
        self.refresh_interval = refresh_interval
        self.log = logger or logging.getLogger("relaybit")
        self.name = name
        self.keys: dict[str, Any] = {}
        self.fetched = 0  #: successful JWKS fetches
        self._task: asyncio.Task[None] | None = None
        self._fetched = asyncio.Event()

    @classmethod
    def from_options(
        cls, opts: Options, *, section: str, logger: logging.Logger, name: str
    ) -> JwtValidator | None:
        """The validator for ``oauth2.*`` keys; None when ``oauth2.validate`` is off."""
        if not opts.bool("oauth2.validate"):
            return None
        url = opts.opt_str("oauth2.jwks_url")
        if not url:
            raise ConfigError(
                "oauth2.validate on needs oauth2.jwks_url (the URL of the token signing keys)",
                opts.origin("oauth2.validate"),
                section=section,
                key="oauth2.jwks_url",
            )
        if not url.startswith(("http://", "https://")):
            raise ConfigError(
                f"expected an http:// or https:// URL, got {url!r}",
                opts.origin("oauth2.jwks_url"),
                section=section,
                key="oauth2.jwks_url",
            )
        clients = [c for value in opts.list("oauth2.allowed_clients") for c in str(value).split()]
        return cls(
            url,
            issuer=opts.opt_str("oauth2.issuer"),
            audience=opts.opt_str("oauth2.allowed_audience"),
            clients=clients,
            refresh_interval=float(opts.int("oauth2.jwks_refresh_interval")),
            logger=logger,
            name=name,
        )

    async def start(self) -> None:
        """Fetch the JWKS now (a failure is logged; retried in the background)."""
        await self.refresh()
        self._task = asyncio.create_task(self._refresh_loop(), name=f"{self.name} jwks")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _refresh_loop(self) -> None:
        while True:
            # until a first fetch works, retry sooner than the refresh interval
            await asyncio.sleep(
                self.refresh_interval if self.keys else min(5.0, self.refresh_interval)
            )
            await self.refresh()

    async def refresh(self) -> bool:
        """Fetch the JWKS; keep the old keys on failure. True on success."""
        try:
            timeout = aiohttp.ClientTimeout(total=10)
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(self.jwks_url) as response,
            ):
                if response.status != 200:
                    raise ValueError(f"HTTP {response.status}")
                document = await response.json(content_type=None)
            keys = self.parse_jwks(document)
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            self.log.warning(
                "%s: could not fetch the JWKS from %s: %s%s",
                self.name,
                self.jwks_url,
                exc or type(exc).__name__,
                "" if self.keys else " (every token is refused until it is fetched)",
            )
            return False
        self.keys = keys
        self.fetched += 1
        self.log.debug("%s: %d signing keys from %s", self.name, len(keys), self.jwks_url)
        return True

    @staticmethod
    def parse_jwks(document: Any) -> dict[str, Any]:
        """``kid -> RSA public key`` for the RSA keys of a JWKS document; ValueError if none."""
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ValueError("not a JWKS document (no 'keys' list)")
        keys: dict[str, Any] = {}
        for entry in document["keys"]:
            if not isinstance(entry, dict) or entry.get("kty") != "RSA" or not entry.get("kid"):
                continue
            try:
                keys[str(entry["kid"])] = jwt.PyJWK.from_dict(entry, algorithm="RS256").key
            except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, KeyError, TypeError):
                continue
        if not keys:
            raise ValueError("the JWKS has no usable RSA key with a 'kid'")
        return keys

    def validate(self, authorization: str | None) -> str | None:
        """None when the ``Authorization`` header holds a valid token, else why not."""
        if not authorization:
            return "missing authorization header"
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return "missing bearer token"
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError as exc:
            return f"malformed token: {exc}"
        kid = header.get("kid")
        if not kid:
            return "missing kid in header"
        if header.get("alg") != "RS256":
            return f"unsupported alg {header.get('alg')!r} (RS256 expected)"
        if not self.keys:
            return "validation unavailable: the JWKS was not fetched yet"
        key = self.keys.get(str(kid))
        if key is None:
            return f"no key with kid {kid!r} in the JWKS"
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                issuer=self.issuer,
                audience=self.audience,
                options={"require": ["exp"], "verify_aud": self.audience is not None},
            )
        except jwt.PyJWTError as exc:
            return str(exc) or type(exc).__name__
        if self.clients:
            client = claims.get("azp") or claims.get("client_id") or claims.get("appid")
            if client not in self.clients:
                return f"client {client!r} is not in oauth2.allowed_clients"
        return None

    def __repr__(self) -> str:
        return f"<JwtValidator {self.jwks_url} keys={len(self.keys)}>"
