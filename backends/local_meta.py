"""Object metadata of the local-disk backend: a sidecar file per object.

``objects/<encoded key>%m`` holds ``{"content_type": …}`` for an object
stored with one. ``%m`` cannot end an encoded key (a literal ``%`` is encoded
as ``%25``), so a sidecar never collides with an object or a directory. The
sidecar is written (or a stale one removed) before the object is renamed into
place, and removed with the object. All functions here block: call them in a
worker thread.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from pathlib import Path

from backends.base import ObjectInfo, ObjectMeta

SUFFIX = "%m"


def sidecar(target: Path) -> Path:
    return target.with_name(target.name + SUFFIX)


def save(target: Path, meta: ObjectMeta | None, fsync: bool) -> None:
    """Record ``meta`` for the object about to appear at ``target``."""
    path = sidecar(target)
    if meta is None or not meta.content_type:
        remove(target)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{secrets.token_hex(8)}{SUFFIX}")
    data = json.dumps({"content_type": meta.content_type}).encode()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, data)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def remove(target: Path) -> None:
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        sidecar(target).unlink()


def info(target: Path, key: str) -> ObjectInfo | None:
    """The object at ``target`` with its recorded content type, or None."""
    try:
        st = os.stat(target)
    except (FileNotFoundError, NotADirectoryError):
        return None
    content_type = None
    with contextlib.suppress(FileNotFoundError, NotADirectoryError, ValueError):
        value = json.loads(sidecar(target).read_bytes()).get("content_type")
        content_type = value if isinstance(value, str) else None
    # a replacing object is another file (rename): inode and mtime change
    version = f"{st.st_ino}:{st.st_mtime_ns}"
    return ObjectInfo(key=key, size=st.st_size, content_type=content_type, version=version)
