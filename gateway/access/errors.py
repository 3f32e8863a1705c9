"""The refusals of the access layer: a status and a one-line message.

The codes and texts are Qiniu's (an upload token is Qiniu's credential, and
its SDKs match on them: ARCHITECTURE.md §8); each protocol renders an
``AccessError`` its own way. ``Refusal.error()`` makes the exception.
"""

from __future__ import annotations

from dataclasses import dataclass


class AccessError(Exception):
    """A refused request, answered as ``status`` with ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status} {message}")
        self.status = status
        self.message = message

    def body(self) -> dict[str, str]:
        return {"error": self.message}


@dataclass(frozen=True)
class Refusal:
    status: int
    message: str

    def error(self, detail: str | None = None) -> AccessError:
        """The exception; ``detail`` replaces the message where the exact
        text is not something SDKs match on."""
        return AccessError(self.status, detail or self.message)


BAD_REQUEST = Refusal(400, "bad request")
BAD_TOKEN = Refusal(401, "bad token")
EXPIRED_TOKEN = Refusal(401, "expired token")
KEY_SCOPE = Refusal(403, "key doesn't match with scope")
MIME_LIMIT = Refusal(403, "limited mimeType")
FILE_TOO_SMALL = Refusal(403, "file size is less than fsizeMin")
TOO_LARGE = Refusal(413, "request entity too large")
