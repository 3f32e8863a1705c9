"""Object metadata of the local-disk backend: the content type of an object
(and its SHA-256, as ``user.upload-gateway.sha256`` where xattrs are kept).

It lives on the object's file itself, as the extended attribute
``user.upload-gateway.content-type``: set on a stream's file when the stream
is created with a type (a tus ``filetype``), the fsync that seals the stream
makes it durable with the bytes, and the rename that commits the object
carries it, so the hot path pays no file and no fsync more. A type given
only at commit (a Qiniu ``mimeType``) is set then, and the file fsynced again.

On a filesystem without user extended attributes, a sidecar file
``objects/<encoded key>%m`` holds ``{"content_type": …}`` instead (also read
for objects stored before the attribute was used). ``%m`` cannot end an
encoded key (a literal ``%`` is encoded as ``%25``), so a sidecar never
collides with an object or a directory. A stale sidecar is removed before an
object is renamed into place, and with the object. All functions here block:
call them in a worker thread.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
from pathlib import Path

from backends.base import ObjectInfo, ObjectMeta

SUFFIX = "%m"
ATTR = "user.upload-gateway.content-type"
SHA256_ATTR = "user.upload-gateway.sha256"
#: errors that mean "this filesystem keeps no user extended attributes"
_NO_XATTRS = {errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM}


def sidecar(target: Path) -> Path:
    return target.with_name(target.name + SUFFIX)


def mark(path: Path, content_type: str | None) -> bool:
    """Record ``content_type`` (None: none) on the file at ``path``; False
    where the filesystem keeps no extended attributes."""
    try:
        if content_type:
            os.setxattr(path, ATTR, content_type.encode())
        else:
            with contextlib.suppress(OSError):
                if os.getxattr(path, ATTR):
                    os.removexattr(path, ATTR)
    except OSError as exc:
        if exc.errno in _NO_XATTRS:
            return False
        raise
    return True


def _mark_sha256(path: Path, sha256: str | None) -> None:
    """The object's SHA-256 as an xattr, where the filesystem keeps them.
    No fsync of its own: the upload's record holds it durably; the
    attribute is a copy beside the bytes for tools that read the disk."""
    if not sha256:
        return
    try:
        os.setxattr(path, SHA256_ATTR, sha256.encode())
    except OSError as exc:
        if exc.errno not in _NO_XATTRS:
            raise


def recorded(path: Path) -> str | None:
    """The content type recorded on the file at ``path`` itself, if any."""
    try:
        return os.getxattr(path, ATTR).decode()
    except (OSError, UnicodeDecodeError):
        return None


def save(source: Path, target: Path, meta: ObjectMeta | None, fsync: bool) -> None:
    """Record ``meta`` for the file at ``source``, about to become the object
    at ``target`` (by rename)."""
    content_type = meta.content_type if meta is not None else None
    _mark_sha256(source, meta.sha256 if meta is not None else None)
    remove(target)
    if recorded(source) == content_type:
        return  # set when the stream was created: sealed with its bytes
    if mark(source, content_type):
        if fsync:
            _fsync(source)
        return
    if content_type:
        _write_sidecar(sidecar(target), content_type, fsync)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_sidecar(path: Path, content_type: str, fsync: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{secrets.token_hex(8)}{SUFFIX}")
    data = json.dumps({"content_type": content_type}).encode()
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
    content_type = recorded(target)
    if content_type is None:
        with contextlib.suppress(FileNotFoundError, NotADirectoryError, ValueError):
            value = json.loads(sidecar(target).read_bytes()).get("content_type")
            content_type = value if isinstance(value, str) else None
    # a replacing object is another file (rename): inode and mtime change
    version = f"{st.st_ino}:{st.st_mtime_ns}"
    sha256 = None
    with contextlib.suppress(OSError, UnicodeDecodeError):
        sha256 = os.getxattr(target, SHA256_ATTR).decode()
    return ObjectInfo(
        key=key, size=st.st_size, content_type=content_type, version=version, sha256=sha256
    )
