from __future__ import annotations

from collections.abc import Callable

import pytest

from gateway import content_types as mime
from gateway.access.policy import MimeLimit, PutPolicy
from gateway.protocols.qiniu.errors import QiniuError


def _status(fn: Callable[..., object], *args: object) -> int:
    try:
        fn(*args)
    except QiniuError as exc:
        return exc.status
    return 200


def test_scopes_and_overwrite() -> None:
    bucket = PutPolicy.parse({"scope": "b", "deadline": 1})
    assert bucket.scope_key is None and not bucket.may_overwrite
    bucket.check_key("anything")
    exact = PutPolicy.parse({"scope": "b:k", "deadline": 1})
    assert exact.may_overwrite and exact.resolve_key(None, str) == "k"
    assert _status(exact.check_key, "k2") == 403
    assert not PutPolicy.parse({"scope": "b:k", "insertOnly": 1}).may_overwrite
    prefix = PutPolicy.parse({"scope": "b:img/", "isPrefixalScope": 1})
    prefix.check_key("img/a.png")
    assert _status(prefix.check_key, "doc/a") == 403
    assert not prefix.may_overwrite
    assert prefix.resolve_key(None, str) is None  # named by hash (then checked)
    colon = PutPolicy.parse({"scope": "b:a:b"})
    assert colon.bucket == "b" and colon.scope_key == "a:b"
    limited = PutPolicy.parse({"scope": "b", "keylimit": ["x", "y"]})
    assert _status(limited.check_key, "z") == 403 and _status(limited.check_key, "y") == 200


def test_key_resolution_order() -> None:
    def render(template: str) -> str:
        return template.replace("$(etag)", "H")

    p = PutPolicy.parse({"scope": "b", "saveKey": "s/$(etag)"})
    assert p.resolve_key("client", render) == "client"
    assert p.resolve_key(None, render) == "s/H"
    forced = PutPolicy.parse({"scope": "b", "saveKey": "s/$(etag)", "forceSaveKey": True})
    assert forced.resolve_key("client", render) == "s/H"
    assert PutPolicy.parse({"scope": "b"}).resolve_key(None, render) is None


def test_lenient_parsing_and_unknown_fields() -> None:
    p = PutPolicy.parse(
        {
            "scope": "b",
            "deadline": "123",
            "fsizeLimit": "10",
            "detectMime": "1",
            "persistentOps": "x",
            "whatever": {"a": 1},
            "callbackUrl": "http://a/cb; http://b/cb",
        }
    )
    assert p.deadline == 123 and p.fsize_limit == 10 and p.detect_mime
    assert p.callback_urls == ("http://a/cb", "http://b/cb")
    assert _status(PutPolicy.parse, {"scope": "b", "callbackUrl": "u", "returnUrl": "r"}) == 400
    assert _status(PutPolicy.parse, {"deadline": 1}) == 401
    assert _status(PutPolicy.parse, ["scope"]) == 401


def test_sizes() -> None:
    p = PutPolicy.parse({"scope": "b", "fsizeLimit": 10, "fsizeMin": 2})
    assert _status(p.check_size, 11) == 413
    assert _status(p.check_size, 1) == 403
    assert _status(p.check_size, 10) == 200
    assert _status(p.check_size_so_far, 11) == 413


@pytest.mark.parametrize(
    ("limit", "allowed", "denied"),
    [
        ("image/*", ["image/png", "image/jpeg"], ["video/mp4", "text/plain"]),
        ("image/jpeg;image/png", ["image/png"], ["image/gif"]),
        ("!application/json;text/plain", ["image/png"], ["application/json", "text/plain"]),
        ("image/*;!image/gif", ["image/png"], ["image/gif", "text/plain"]),
    ],
)
def test_mime_limit(limit: str, allowed: list[str], denied: list[str]) -> None:
    rule = MimeLimit.parse(limit)
    assert rule is not None
    assert all(rule.allows(m) for m in allowed)
    assert not any(rule.allows(m) for m in denied)
    p = PutPolicy.parse({"scope": "b", "mimeLimit": limit})
    assert p.sniff_content
    assert _status(p.check_mime, denied[0]) == 403


def test_mime_decision() -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 20
    assert mime.decide("application/octet-stream", "a.txt", None, png, False) == "text/plain"
    assert mime.decide("application/octet-stream", None, None, png, False) == "image/png"
    assert mime.decide("text/plain", None, None, png, True) == "image/png"
    assert mime.decide("video/mp4", "a.txt", None, png, False) == "video/mp4"
    assert mime.decide(None, None, "k.json", b"\x01\x02\xff", False) == "application/json"
    assert mime.decide(None, None, None, b"\x00\xff", False) == "application/octet-stream"
    assert mime.sniff(b'  {"a": 1}') == "application/json"
