"""What both protocol clients share: the HTTP session, settings, the resume
store, the reporter, and per-part progress."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp

from .body import RateLimit
from .files import LocalFile
from .progress import FileProgress, Reporter
from .resume_store import ResumeStore
from .retry import Backoff

T = TypeVar("T")


@dataclass(frozen=True)
class Settings:
    endpoint: str
    #: ``Authorization`` header value, if any
    authorization: str | None = None
    #: bytes per request (tus PATCH, Qiniu part); 0 = the protocol's default
    chunk_size: int = 0
    parallel: int = 1
    metadata: dict[str, str] = field(default_factory=dict)
    key: str | None = None
    backoff: Backoff = field(default_factory=Backoff)
    limit: RateLimit = field(default_factory=lambda: RateLimit(0))


@dataclass(frozen=True)
class Result:
    file: LocalFile
    #: where the file can be fetched (the tus upload URL when the server names none)
    url: str
    #: the tus upload URL, or the Qiniu upload id
    upload: str
    key: str | None
    #: bytes the server already had when this run started
    resumed_from: int
    #: completed at creation: the server had these bytes (tus ``instant-upload``)
    instant: bool = False


class Context:
    def __init__(
        self,
        http: aiohttp.ClientSession,
        settings: Settings,
        store: ResumeStore | None,
        reporter: Reporter,
    ) -> None:
        self.http = http
        self.settings = settings
        self.store = store
        self.reporter = reporter

    def retry_note(self, name: str) -> Callable[[str, float], None]:
        def note(reason: str, delay: float) -> None:
            self.reporter.message(f"{name}: {reason}; retrying in {delay:.1f} s")

        return note

    def recall(self, fingerprint: str) -> dict[str, Any] | None:
        return self.store.get(fingerprint) if self.store else None

    def remember(self, fingerprint: str, entry: dict[str, Any]) -> None:
        if self.store:
            self.store.put(fingerprint, entry)

    def forget(self, fingerprint: str) -> None:
        if self.store:
            self.store.forget(fingerprint)


class PartProgress:
    """One range's share of a file's progress; ``set`` may go back (a retry
    resends what the server did not keep)."""

    def __init__(self, file: FileProgress) -> None:
        self.file = file
        self.completed = 0

    def set(self, completed: int) -> None:
        self.file.advance(completed - self.completed)
        self.completed = completed

    def advance(self, n: int) -> None:
        self.set(self.completed + n)


async def all_of(coros: list[Coroutine[Any, Any, T]]) -> list[T]:
    """Run ``coros`` together; the first failure cancels the rest and is
    raised as itself (not as an exception group)."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(c) for c in coros]
    except BaseExceptionGroup as group_error:
        raise group_error.exceptions[0] from None
    return [t.result() for t in tasks]
