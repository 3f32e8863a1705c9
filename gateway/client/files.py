"""The files a command names: paths expanded (directories recursively) into
local files with the name they get on the server."""

from __future__ import annotations

import hashlib
import mimetypes
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LocalFile:
    path: Path
    #: name on the server: the file's name, or its path relative to the
    #: parent of the directory that was named (``photos/2024/a.jpg``)
    name: str
    size: int
    mtime_ns: int

    @property
    def content_type(self) -> str:
        guessed, _ = mimetypes.guess_type(self.name)
        return guessed or "application/octet-stream"

    def sha256(self) -> bytes:
        """The SHA-256 of the file's bytes (blocking: call it in a thread)."""
        digest = hashlib.sha256()
        with open(self.path, "rb") as f:
            while block := f.read(1024 * 1024):
                digest.update(block)
        return digest.digest()

    def fingerprint(self, *parts: object) -> str:
        """Identifies this file (as it is now) plus the upload settings: a
        changed file or other settings never resume an old upload."""
        text = "\0".join(
            [str(self.path.resolve()), str(self.size), str(self.mtime_ns), *map(str, parts)]
        )
        return hashlib.sha256(text.encode()).hexdigest()


class PathError(Exception):
    """A named path cannot be uploaded."""


def _local(path: Path, name: str) -> LocalFile:
    st = path.stat()
    return LocalFile(path=path, name=name, size=st.st_size, mtime_ns=st.st_mtime_ns)


def expand(paths: list[str]) -> list[LocalFile]:
    """Every regular file under ``paths``, in a stable order."""
    found: list[LocalFile] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            base = path.resolve().parent
            for root, dirs, names in os.walk(path):
                dirs.sort()
                for n in sorted(names):
                    p = Path(root) / n
                    if p.is_file():
                        found.append(_local(p, p.resolve().relative_to(base).as_posix()))
        elif path.is_file():
            found.append(_local(path, path.name))
        elif path.exists():
            raise PathError(f"{raw}: not a regular file or directory")
        else:
            raise PathError(f"{raw}: no such file or directory")
    return found
