"""Credentials a request carries and what they grant.

``Authorization: UpToken <token>`` (a Qiniu upload token) and
``Authorization: Bearer <jwt>`` both end as a ``Grant``: a put policy (what
may be uploaded where, until when) and who presented it (``endUser``/``sub``).
A grant is checked for its deadline whenever it is made, so an expired
credential works for no request at all.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .errors import BAD_TOKEN, Refusal
from .jwt_tokens import JwtVerifier
from .policy import PutPolicy
from .tokens import TokenVerifier

#: 401 for a request that needs a credential and has none
NO_CREDENTIAL = Refusal(401, "an upload token or JWT is required (Authorization header)")


@dataclass(frozen=True)
class Grant:
    policy: PutPolicy
    #: ``uptoken`` or ``jwt``
    scheme: str

    @property
    def end_user(self) -> str | None:
        return self.policy.end_user


def split_authorization(header: str | None) -> tuple[str, str] | None:
    """``(scheme, credential)`` of an Authorization header, scheme lowercased."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if not value.strip():
        return None
    return scheme.lower(), value.strip()


class Credentials:
    """Verifies the credentials this gateway accepts."""

    def __init__(self, tokens: TokenVerifier, jwt: JwtVerifier | None) -> None:
        self.tokens = tokens
        self.jwt = jwt

    def grant(self, header: str | None, now: float | None = None) -> Grant | None:
        """The grant of an Authorization header; None without one; 401 if it
        is malformed, forged, of a kind not configured, or expired."""
        parts = split_authorization(header)
        if parts is None:
            if header and header.strip():
                raise BAD_TOKEN.error()
            return None
        scheme, value = parts
        if scheme == "uptoken":
            grant = Grant(self.tokens.verify(value).policy, "uptoken")
        elif scheme == "bearer" and self.jwt is not None:
            grant = Grant(self.jwt.verify(value), "jwt")
        else:
            raise BAD_TOKEN.error(f"unsupported Authorization scheme {scheme[:20]!r}")
        grant.policy.check_deadline(time.time() if now is None else now)
        return grant
