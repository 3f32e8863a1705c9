"""Signatures on what the gateway sends to business services (async
webhooks and sync hooks): ``Hook-Signature: sha256=<hex HMAC-SHA256 of the
body>`` with the hook's ``secret``. See README (Access control) for the
receiving side."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

SIGNATURE_HEADER = "Hook-Signature"


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: bytes) -> dict[str, str]:
    """The signature header for ``body``; none without a secret."""
    return {SIGNATURE_HEADER: signature(secret, body)} if secret else {}


def hook_request(event: str, payload: dict[str, Any], secret: str) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a call to a hook: compact JSON, signed."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "Hook-Name": event}
    headers.update(signed_headers(secret, body))
    return body, headers
