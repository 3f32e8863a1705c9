"""Signatures on what the gateway sends to business services (async
webhooks and sync hooks): ``Hook-Signature: sha256=<hex HMAC-SHA256 of the
body>`` with the hook's ``secret``. See README (Access control) for the
receiving side."""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "Hook-Signature"


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: bytes) -> dict[str, str]:
    """The signature header for ``body``; none without a secret."""
    return {SIGNATURE_HEADER: signature(secret, body)} if secret else {}
