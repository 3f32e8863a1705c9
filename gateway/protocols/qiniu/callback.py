"""``callbackUrl``: POST the rendered ``callbackBody`` to the business server,
signed as Qiniu signs it, and hand its JSON answer back to the client.

``Authorization: QBox <AK>:<urlsafe_b64(hmac_sha1(SK, path[?query] + "\\n"
[+ body]))>`` — the body is part of the signed text only when it is
form-urlencoded (what ``qiniu.Auth.verify_callback`` checks). URLs of a
``;``-separated list are tried in turn; if none answers 200 with JSON the
upload fails with 579 (the object stays stored).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp

from gateway.access.magic import Mode
from gateway.access.tokens import KeyPair, sign
from gateway.urls import http_url_problem

from .errors import CALLBACK_FAILED

FORM_TYPE = "application/x-www-form-urlencoded"
DEFAULT_BODY = "key=$(key)&hash=$(etag)&bucket=$(bucket)&fsize=$(fsize)"
_MAX_ANSWER = 1024 * 1024

log = logging.getLogger(__name__)


def body_mode(body_type: str | None) -> Mode:
    """How a ``callbackBody`` is rendered for its ``callbackBodyType``."""
    if body_type and "json" in body_type.lower():
        return Mode.JSON
    return Mode.FORM


def authorization(pair: KeyPair, url: str, body: bytes, content_type: str) -> str:
    parts = urlsplit(url)
    signed = (parts.path or "/") + (f"?{parts.query}" if parts.query else "") + "\n"
    data = signed.encode()
    if content_type.split(";", 1)[0].strip().lower() == FORM_TYPE:
        data += body
    return f"QBox {pair.access_key}:{sign(pair.secret_key, data)}"


@dataclass(frozen=True)
class Callback:
    urls: tuple[str, ...]
    body: str
    body_type: str | None = None
    host: str | None = None


async def send(
    session: aiohttp.ClientSession,
    callback: Callback,
    pair: KeyPair,
    timeout: float = 10.0,
) -> bytes:
    """Deliver ``callback``; return the JSON the business server answered.
    Raise 579 ``callback failed`` if no URL answers 200 with JSON."""
    content_type = callback.body_type or FORM_TYPE
    body = callback.body.encode()
    failures: list[str] = []
    for url in callback.urls:
        problem = http_url_problem(url)
        if problem is not None:
            failures.append(f"{url[:200]!r}: {problem}")
            continue
        headers = {
            "Content-Type": content_type,
            "Authorization": authorization(pair, url, body, content_type),
        }
        if callback.host:
            headers["Host"] = callback.host
        try:
            async with session.post(
                url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
                allow_redirects=False,
            ) as resp:
                answer = await resp.content.read(_MAX_ANSWER + 1)
                if resp.status != 200:
                    failures.append(f"{url}: status {resp.status}")
                    continue
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            failures.append(f"{url}: {type(exc).__name__}")
            continue
        if len(answer) > _MAX_ANSWER:
            failures.append(f"{url}: answer too large")
            continue
        try:
            json.loads(answer)
        except ValueError:
            failures.append(f"{url}: answer is not JSON")
            continue
        return answer
    detail = "; ".join(failures) or "no callback url"
    log.warning("qiniu callback failed: %s", detail)
    raise CALLBACK_FAILED.error(f"callback failed: {detail}")
