"""Private-download URLs in Qiniu's form, as the SDKs' ``private_download_url``
make them::

    <url>?e=<unix deadline>&token=<AK>:<urlsafe_b64(hmac_sha1(SK, <url>?e=<deadline>))>

(``&e=`` when the URL has a query already). The signature covers everything
before ``&token=``: scheme, host, path and query exactly as sent — or with the
path's percent-escapes decoded, since a service may sign the key as plain
text (``f"{domain}/{key}"``, the Python SDK's example) while every HTTP
client sends it percent-encoded.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Iterator
from urllib.parse import unquote

from .errors import Refusal
from .keys import KeyPair, sign

UNSIGNED = Refusal(401, "this object needs a signed URL (e=<deadline>&token=<AK>:<sign>)")
BAD_SIGNATURE = Refusal(401, "bad download token")
EXPIRED = Refusal(401, "download token expired")

_TOKEN = "&token="


def sign_url(url: str, pair: KeyPair, ttl: float, now: float | None = None) -> str:
    deadline = int((time.time() if now is None else now) + ttl)
    url = f"{url}{'&' if '?' in url else '?'}e={deadline}"
    return f"{url}{_TOKEN}{pair.access_key}:{sign(pair.secret_key, url)}"


def verify_url(
    url: str, pair_for: Callable[[str], KeyPair | None], now: float | None = None
) -> None:
    """401 unless ``url`` (as the client sent it, absolute) is signed by a
    configured key pair and its deadline has not passed."""
    cut = url.rfind(_TOKEN)
    if cut < 0:
        raise UNSIGNED.error()
    signed, token = url[:cut], url[cut + len(_TOKEN) :]
    access_key, _, signature = token.partition(":")
    pair = pair_for(access_key)
    if pair is None or not signature:
        raise BAD_SIGNATURE.error()

    given = signature.rstrip("=").encode()
    if not any(
        hmac.compare_digest(sign(pair.secret_key, text).rstrip("=").encode(), given)
        for text in _spellings(signed)
    ):
        raise BAD_SIGNATURE.error()
    query = signed.partition("?")[2]
    deadline = None
    for item in query.split("&"):
        name, _, value = item.partition("=")
        if name == "e":
            deadline = value
    if deadline is None or not deadline.isascii() or not deadline.isdigit() or len(deadline) > 12:
        raise BAD_SIGNATURE.error()
    if int(deadline) < (time.time() if now is None else now):
        raise EXPIRED.error()


def _spellings(signed: str) -> Iterator[str]:
    """The URL as sent, then with its path's escapes decoded (if any)."""
    yield signed
    path, sep, query = signed.partition("?")
    if "%" in path:
        try:
            plain = unquote(path, errors="strict")
        except UnicodeDecodeError:
            return
        if plain != path:
            yield plain + sep + query
