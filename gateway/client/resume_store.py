"""Upload URLs (and Qiniu upload ids) kept between runs, like tus clients'
URL storage: one small JSON file, keyed by a file's fingerprint, written
atomically under an advisory lock so that two commands can share it."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: entries older than this are dropped (servers expire unfinished uploads sooner)
MAX_AGE = 30 * 86400


def default_path() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(Path.home(), ".local", "state")
    return Path(base) / "upload-gateway" / "uploads.json"


class ResumeStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                entries = json.loads(self.path.read_text())
                if not isinstance(entries, dict):
                    entries = {}
            except (OSError, ValueError):
                entries = {}
            before = json.dumps(entries, sort_keys=True)
            yield entries
            now = time.time()
            for fp in [k for k, v in entries.items() if now - v.get("saved", now) > MAX_AGE]:
                del entries[fp]
            if json.dumps(entries, sort_keys=True) != before:
                fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".uploads-")
                with os.fdopen(fd, "w") as out:
                    json.dump(entries, out, indent=1, sort_keys=True)
                os.replace(tmp, self.path)

    def get(self, fingerprint: str) -> dict[str, Any] | None:
        with self._locked() as entries:
            entry = entries.get(fingerprint)
        return dict(entry) if isinstance(entry, dict) else None

    def put(self, fingerprint: str, entry: dict[str, Any]) -> None:
        with self._locked() as entries:
            entries[fingerprint] = {**entry, "saved": time.time()}

    def forget(self, fingerprint: str) -> None:
        with self._locked() as entries:
            entries.pop(fingerprint, None)
