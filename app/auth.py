"""JWT verification at the handshake, and the principal that travels with a connection."""
from __future__ import annotations

import functools
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Mapping

import jwt

from .settings import Settings

USER_SCOPES = ("executions", "notifications", "monitoring", "chat", "investigations")
ALL_SCOPES = USER_SCOPES + ("publish", "admin")
# Browsers cannot set headers: they offer ["bearer", TOKEN] as WebSocket subprotocols.
SUBPROTOCOL_MARKERS = ("bearer", "access_token")
MAX_TOKEN_LENGTH = 8192


class AuthError(Exception):
    """The token is missing or unacceptable; the message is safe to show the client."""

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is on the other end of a connection."""

    sub: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    expires_at: float | None = None
    anonymous: bool = False

    def allows(self, scope: str) -> bool:
        """True when the token grants `scope` (admin grants everything)."""
        return scope in self.scopes or "admin" in self.scopes

    @classmethod
    def anonymous_one(cls) -> "Principal":
        """A fresh anonymous principal, confined to its own chat session."""
        return cls(sub=f"anon:{uuid.uuid4().hex[:12]}", anonymous=True)


class TokenVerifier:
    """Checks tokens with fixed algorithms, required `exp`, and `aud`/`iss` when configured."""

    def __init__(self, settings: Settings) -> None:
        self._key = settings.verify_key
        self._algorithms = list(settings.jwt_algorithms)
        self._audience = settings.jwt_audience
        self._issuer = settings.jwt_issuer
        self._leeway = settings.jwt_leeway
        self._dev_secret_path = settings.dev_secret_path

    def verify(self, token: str) -> Principal:
        """Return the token's principal or raise AuthError."""
        if len(token) > MAX_TOKEN_LENGTH:
            raise AuthError("Token de autenticação inválido: muito longo")
        try:
            claims = jwt.decode(
                token, self._key, algorithms=self._algorithms, audience=self._audience,
                issuer=self._issuer, leeway=self._leeway,
                options={"require": ["exp", "sub"], "verify_aud": self._audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("Token de autenticação expirado", {"motivo": "expired"}) from None
        except jwt.ImmatureSignatureError:
            raise AuthError("Token de autenticação ainda não é válido", {"motivo": "not_yet_valid"}) from None
        except jwt.InvalidSignatureError:
            raise self._signed_elsewhere() from None
        except jwt.InvalidTokenError as exc:
            raise AuthError("Token de autenticação inválido", {"motivo": type(exc).__name__}) from None
        return _principal(claims)

    def _signed_elsewhere(self) -> AuthError:
        """A token signed with another key: say so, and where the development secret lives when it is in use."""
        message = "Token de autenticação inválido: assinado com outra chave, não a deste servidor"
        details = {"motivo": "InvalidSignatureError"}
        if self._dev_secret_path:
            message += (f"; o servidor usa o segredo de desenvolvimento em {self._dev_secret_path}: gere o token "
                        "com `python -m app token --sub USUARIO` com o mesmo PONTE_HOME")
            details["segredo_de_desenvolvimento"] = self._dev_secret_path
        return AuthError(message, details)


def _principal(claims: Mapping[str, Any]) -> Principal:
    sub, scope = claims.get("sub"), claims.get("scope", "")
    if not isinstance(sub, str) or not sub or len(sub) > 128:
        raise AuthError("Token de autenticação inválido", {"motivo": "bad sub"})
    if not isinstance(scope, str):
        raise AuthError("Token de autenticação inválido", {"motivo": "bad scope"})
    return Principal(sub=sub, scopes=_scopes(scope), expires_at=float(claims["exp"]))


@functools.lru_cache(maxsize=256)
def _scopes(scope: str) -> frozenset[str]:
    """Scope sets are shared between connections: a handful of distinct values, thousands of users."""
    return frozenset(scope.split())


def issue_token(settings: Settings, sub: str, scopes: tuple[str, ...] = USER_SCOPES,
                ttl: float = 3600.0) -> str:
    """A token signed with the configured key (development and operations use)."""
    key = settings.signing_key
    if not key:
        raise AuthError("no signing key: set JWT_SECRET, or JWT_PRIVATE_KEY beside JWT_PUBLIC_KEY")
    now = int(time.time())
    claims: dict[str, Any] = {"sub": sub, "scope": " ".join(scopes), "iat": now, "exp": now + int(ttl)}
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    return jwt.encode(claims, key, algorithm=settings.jwt_algorithms[0])


def find_token(headers: Mapping[str, str], query: Mapping[str, str],
               auth: Mapping[str, Any] | None) -> str | None:
    """The token from the Socket.IO auth payload, Authorization header, subprotocol or query."""
    if auth and isinstance(auth.get("token"), str):
        return auth["token"]
    header = headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    offered = [p.strip() for p in headers.get("Sec-WebSocket-Protocol", "").split(",")]
    for marker, value in zip(offered, offered[1:]):
        if marker.lower() in SUBPROTOCOL_MARKERS and value:
            return value
    return query.get("token") or None
