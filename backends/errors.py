"""Errors a backend raises; SDK exceptions are translated into these at the
backend's edge (``raise … from exc``) and never reach the core.

    BackendError
    ├── BackendConfigError   bad configuration, missing bucket, bad credentials (start-up)
    ├── BackendUnavailable   the store is down or failing; retry later (HTTP 503)
    ├── NotFound             no such object / stream piece
    ├── Exists               the key holds an object (``StreamInfo.if_absent``)
    └── InvalidState         the stream's pieces disagree with the recorded state
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from backends.base import WriteResult


class BackendError(Exception):
    """Base of every error a backend raises."""


class BackendConfigError(BackendError):
    """The backend cannot work with this configuration."""


class BackendUnavailable(BackendError):
    """The store did not answer or failed; the request may be retried.

    ``partial`` is what a failed ``write`` managed to store durably before
    the failure, so the core can still commit it."""

    def __init__(
        self, message: str, *, partial: WriteResult | None = None, retry_after: int = 5
    ) -> None:
        super().__init__(message)
        self.partial = partial
        self.retry_after = retry_after


class NotFound(BackendError):
    """The object or piece does not exist."""


class Exists(BackendError):
    """A write asked to make an object only if its key held none, and it did."""


class DigestMismatch(BackendError):
    """The bytes the store received are not those of the digest the write was given."""


class InvalidState(BackendError):
    """Recorded state and stored pieces disagree (e.g. a lost tail)."""
