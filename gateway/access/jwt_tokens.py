"""``Authorization: Bearer <jwt>``: JWTs verified with PyJWT, their claims
mapped onto the put policy an upload token would carry.

* ``policy``: an object with put-policy fields, named as in Qiniu's put
  policy (``scope`` is required; ``fsizeLimit``, ``mimeLimit``, ``saveKey``,
  ``insertOnly``… as there);
* ``exp`` (required) is the deadline, ``sub`` the ``endUser``; both override
  the same fields inside ``policy``.

HS256/384/512 use a shared secret; RS*/ES* a PEM public key or a JWKS file
whose keys are chosen by the token's ``kid``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jwt

from gateway.config import JwtConfig

from .errors import BAD_TOKEN, EXPIRED_TOKEN
from .policy import PutPolicy

#: the claim that carries the put policy
POLICY_CLAIM = "policy"


class JwtVerifier:
    def __init__(self, config: JwtConfig) -> None:
        self.config = config
        self._key: Any = config.secret or None
        self._jwks: jwt.PyJWKSet | None = None
        if config.public_key_file:
            self._key = Path(config.public_key_file).read_text()
        elif config.jwks_file:
            self._jwks = jwt.PyJWKSet.from_json(Path(config.jwks_file).read_text())

    def _key_for(self, token: str) -> Any:
        if self._jwks is None:
            return self._key
        kid = jwt.get_unverified_header(token).get("kid")
        for key in self._jwks.keys:
            if kid is None or key.key_id == kid:
                return key.key
        raise BAD_TOKEN.error("no key in the JWKS file for this token's kid")

    def verify(self, token: str) -> PutPolicy:
        """The put policy of ``token``; 401 on any fault, ``expired token``
        past ``exp``."""
        config = self.config
        try:
            claims = jwt.decode(
                token,
                self._key_for(token),
                algorithms=list(config.algorithms),
                audience=config.audience or None,
                issuer=config.issuer or None,
                leeway=config.leeway,
                options={"require": ["exp"], "verify_aud": bool(config.audience)},
            )
        except jwt.ExpiredSignatureError:
            raise EXPIRED_TOKEN.error() from None
        except (jwt.InvalidTokenError, jwt.PyJWKError, ValueError) as exc:
            raise BAD_TOKEN.error(f"bad token: {exc}"[:200]) from None
        policy = claims.get(POLICY_CLAIM)
        if isinstance(policy, str):
            try:
                policy = json.loads(policy)
            except ValueError:
                policy = None
        if not isinstance(policy, dict):
            raise BAD_TOKEN.error(f"bad token: no {POLICY_CLAIM!r} claim")
        data = dict(policy)
        data["deadline"] = claims["exp"]
        if claims.get("sub") is not None:
            data["endUser"] = str(claims["sub"])
        return PutPolicy.parse(data)
