"""The put policy carried by an upload token.

``PutPolicy.parse`` reads the decoded JSON leniently: unknown fields are
ignored, numbers may arrive as strings, and only the fields the gateway acts
on are kept. The rules that need no I/O live here as methods: scope and key
checks, key naming, size and MIME limits, and whether an upload may replace
an existing object.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.numbers import MAX_VALUE, json_number
from gateway.urls import http_url_problem

from .errors import (
    BAD_REQUEST,
    BAD_TOKEN,
    EXPIRED_TOKEN,
    FILE_TOO_SMALL,
    KEY_SCOPE,
    MIME_LIMIT,
    TOO_LARGE,
)

#: seconds in a ``deleteAfterDays`` day
DAY = 86400
#: the longest ``deleteAfterDays`` taken (100 years): every store can hold the date
MAX_DELETE_AFTER_DAYS = 36_500


def _int(data: Mapping[str, Any], name: str, maximum: int = MAX_VALUE) -> int | None:
    """An integer field (numbers may arrive as strings); 400 naming the field
    for anything unbounded or not an integer (``1e400``, ``"1e400"``)."""
    return json_number(data.get(name), f"put policy field {name}", maximum=maximum)


def _flag(data: Mapping[str, Any], name: str) -> bool:
    value = data.get(name)
    if isinstance(value, str):
        return value.strip().lower() not in ("", "0", "false", "no")
    if isinstance(value, bool) or value is None:
        return bool(value)
    return bool(json_number(value, f"put policy field {name}"))


def _str(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text or None


@dataclass(frozen=True)
class MimeLimit:
    """``mimeLimit``: ``image/*;video/mp4`` allows only those types;
    a leading ``!`` (``!application/json;text/plain``) forbids the whole list.
    An item of an allow-list may also carry its own ``!``."""

    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> MimeLimit | None:
        if not text or not text.strip():
            return None
        text = text.strip()
        negate_all = text.startswith("!")
        if negate_all:
            text = text[1:]
        allow: list[str] = []
        deny: list[str] = []
        for item in text.split(";"):
            item = item.strip().lower()
            if not item:
                continue
            if item.startswith("!"):
                deny.append(item[1:].strip())
            elif negate_all:
                deny.append(item)
            else:
                allow.append(item)
        return cls(tuple(allow), tuple(deny))

    def allows(self, mime: str) -> bool:
        mime = mime.split(";", 1)[0].strip().lower()
        if any(fnmatch.fnmatchcase(mime, pat) for pat in self.deny):
            return False
        return not self.allow or any(fnmatch.fnmatchcase(mime, pat) for pat in self.allow)


@dataclass(frozen=True)
class PutPolicy:
    scope: str
    bucket: str
    #: the key (or key prefix when ``prefixal``) after ``bucket:``, if any
    scope_key: str | None
    prefixal: bool = False
    deadline: int = 0
    insert_only: bool = False
    fsize_min: int | None = None
    fsize_limit: int | None = None
    mime_limit: MimeLimit | None = None
    detect_mime: bool = False
    save_key: str | None = None
    force_save_key: bool = False
    end_user: str | None = None
    return_body: str | None = None
    return_url: str | None = None
    callback_urls: tuple[str, ...] = ()
    callback_host: str | None = None
    callback_body: str | None = None
    callback_body_type: str | None = None
    delete_after_days: int | None = None
    keylimit: tuple[str, ...] = ()
    #: the decoded JSON as received, for anything else a caller wants
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def parse(cls, data: Any) -> PutPolicy:
        """Build from decoded JSON; raise 401 ``bad token`` if it is no policy."""
        if not isinstance(data, dict):
            raise BAD_TOKEN.error()
        scope = _str(data.get("scope"))
        if not scope:
            raise BAD_TOKEN.error()
        bucket, sep, scope_key = scope.partition(":")
        if not bucket:
            raise BAD_TOKEN.error()
        callback_url = _str(data.get("callbackUrl")) or ""
        callback_urls = tuple(u.strip() for u in callback_url.split(";") if u.strip())
        keylimit = data.get("keylimit")
        policy = cls(
            scope=scope,
            bucket=bucket,
            scope_key=scope_key if sep else None,
            prefixal=bool(sep) and _flag(data, "isPrefixalScope"),
            deadline=_int(data, "deadline") or 0,
            insert_only=_flag(data, "insertOnly"),
            fsize_min=_int(data, "fsizeMin"),
            fsize_limit=_int(data, "fsizeLimit"),
            mime_limit=MimeLimit.parse(_str(data.get("mimeLimit"))),
            detect_mime=_flag(data, "detectMime"),
            save_key=_str(data.get("saveKey")),
            force_save_key=_flag(data, "forceSaveKey"),
            end_user=_str(data.get("endUser")),
            return_body=_str(data.get("returnBody")),
            return_url=_str(data.get("returnUrl")),
            callback_urls=callback_urls,
            callback_host=_str(data.get("callbackHost")),
            callback_body=_str(data.get("callbackBody")),
            callback_body_type=_str(data.get("callbackBodyType")),
            delete_after_days=_int(data, "deleteAfterDays", MAX_DELETE_AFTER_DAYS),
            keylimit=tuple(str(k) for k in keylimit) if isinstance(keylimit, list) else (),
            raw=data,
        )
        policy._validate()
        return policy

    def _validate(self) -> None:
        if self.callback_urls and self.return_url:
            raise BAD_REQUEST.error("callbackUrl and returnUrl can not be used together")
        problem = http_url_problem(self.return_url) if self.return_url else None
        if problem is not None:
            raise BAD_REQUEST.error(f"invalid returnUrl: {problem}")
        if self.force_save_key and not self.save_key:
            raise BAD_REQUEST.error("forceSaveKey requires saveKey")

    # -- time ----------------------------------------------------------------
    def check_deadline(self, now: float | None = None) -> None:
        """401 ``expired token`` past the deadline; checked when the file is
        created (form upload, mkfile, v2 complete)."""
        if self.deadline and (time.time() if now is None else now) > self.deadline:
            raise EXPIRED_TOKEN.error()

    # -- keys ----------------------------------------------------------------
    @property
    def has_callback(self) -> bool:
        return bool(self.callback_urls)

    def resolve_key(
        self, client_key: str | None, render_save_key: Callable[[str], str]
    ) -> str | None:
        """The key the object gets: ``forceSaveKey`` → saveKey; else the
        client's key; else the key fixed by the scope; else saveKey; else
        None, meaning "name it by its hash" (the caller fills it in)."""
        if self.force_save_key and self.save_key:
            return render_save_key(self.save_key)
        if client_key is not None:
            return client_key
        if self.scope_key is not None and not self.prefixal:
            return self.scope_key
        if self.save_key:
            return render_save_key(self.save_key)
        return None

    def covers(self, key: str) -> bool:
        """Whether the scope (and ``keylimit``) allows ``key``."""
        if self.scope_key is not None:
            ok = key.startswith(self.scope_key) if self.prefixal else key == self.scope_key
            if not ok:
                return False
        return not self.keylimit or key in self.keylimit

    def check_key(self, key: str) -> None:
        """403 ``key doesn't match with scope`` unless ``key`` is allowed."""
        if not self.covers(key):
            raise KEY_SCOPE.error()

    @property
    def may_overwrite(self) -> bool:
        """Only ``bucket:key`` without ``insertOnly`` may replace an object;
        otherwise an existing key answers 614 unless its content is identical."""
        return self.scope_key is not None and not self.prefixal and not self.insert_only

    def delete_at(self, now: float) -> int | None:
        """When an object stored ``now`` is to be deleted (``deleteAfterDays``)."""
        days = self.delete_after_days
        if days is None or days <= 0:
            return None
        return int(now) + days * DAY

    # -- content -------------------------------------------------------------
    def check_size(self, size: int) -> None:
        if self.fsize_limit is not None and self.fsize_limit > 0 and size > self.fsize_limit:
            raise TOO_LARGE.error()
        if self.fsize_min is not None and size < self.fsize_min:
            raise FILE_TOO_SMALL.error()

    def check_size_so_far(self, size: int) -> None:
        """413 as soon as the bytes received pass ``fsizeLimit``."""
        if self.fsize_limit is not None and self.fsize_limit > 0 and size > self.fsize_limit:
            raise TOO_LARGE.error()

    def check_mime(self, mime: str) -> None:
        if self.mime_limit is not None and not self.mime_limit.allows(mime):
            raise MIME_LIMIT.error(f"limited mimeType: this file type ({mime}) is forbidden")

    @property
    def sniff_content(self) -> bool:
        """Whether the MIME type must come from the content, not the client."""
        return self.detect_mime or self.mime_limit is not None
