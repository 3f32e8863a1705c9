"""FastDFS wire format: framing, command codes, fixed-width fields, errno mapping.

Every request and response is a 10-byte header — body length (8 bytes,
big-endian), command (1), status (1; an errno, 0 = OK) — then the body.
Responses carry command 100. Group names are 16-byte NUL-padded fields, file
extensions 6 bytes. Tracker answers carry the storage IP in 15 bytes
(``IP_ADDRESS_SIZE - 1``); the IP width is derived from the body length so
that IPv6 builds with wider fields parse as well.
"""

from __future__ import annotations

import enum
import errno
import struct
from dataclasses import dataclass

from backends.errors import BackendError, BackendUnavailable, InvalidState, NotFound

HEADER = struct.Struct(">QBB")
HEADER_SIZE = HEADER.size  # 10
U64 = struct.Struct(">Q")
GROUP_LEN = 16
EXT_LEN = 6
#: width of the IP field in tracker answers (IP_ADDRESS_SIZE - 1)
TRACKER_IP_LEN = 15
#: width of the source IP field in a query-file-info answer (IP_ADDRESS_SIZE)
FILE_INFO_IP_LEN = 16
RESP = 100


class Cmd(enum.IntEnum):
    # tracker
    QUERY_STORE_WITHOUT_GROUP_ONE = 101
    QUERY_FETCH_ONE = 102
    QUERY_UPDATE = 103
    QUERY_STORE_WITH_GROUP_ONE = 104
    # storage
    UPLOAD_FILE = 11
    DELETE_FILE = 12
    DOWNLOAD_FILE = 14
    QUERY_FILE_INFO = 22
    UPLOAD_APPENDER_FILE = 23
    APPEND_FILE = 24
    MODIFY_FILE = 34
    TRUNCATE_FILE = 36
    REGENERATE_APPENDER_FILENAME = 38  # V6.02+
    # both
    QUIT = 82
    ACTIVE_TEST = 111


def pack_header(body_len: int, cmd: int, status: int = 0) -> bytes:
    return HEADER.pack(body_len, cmd, status)


def unpack_header(data: bytes) -> tuple[int, int, int]:
    length, cmd, status = HEADER.unpack(data)
    return length, cmd, status


def u64(value: int) -> bytes:
    return U64.pack(value)


def read_u64(data: bytes, offset: int = 0) -> int:
    value: int = U64.unpack_from(data, offset)[0]
    return value


def pack_fixed(text: str, width: int) -> bytes:
    raw = text.encode()
    if len(raw) > width:
        raise ValueError(f"{text!r} is longer than {width} bytes")
    return raw.ljust(width, b"\0")


def unpack_fixed(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode(errors="replace")


@dataclass(frozen=True)
class FileId:
    """``group/M00/xx/yy/name.ext``: the group and the storage's remote name."""

    group: str
    remote: str

    @classmethod
    def parse(cls, file_id: str) -> FileId:
        group, sep, remote = file_id.partition("/")
        if not sep or not group or not remote or len(group.encode()) > GROUP_LEN:
            raise ValueError(f"not a FastDFS file id: {file_id!r}")
        return cls(group, remote)

    def __str__(self) -> str:
        return f"{self.group}/{self.remote}"


@dataclass(frozen=True)
class StorageAddr:
    """A storage server as the tracker names it."""

    group: str
    host: str
    port: int
    store_path_index: int = 0

    @property
    def addr(self) -> tuple[str, int]:
        return (self.host, self.port)


@dataclass(frozen=True)
class FileInfo:
    size: int
    create_time: int
    crc32: int
    source_ip: str


def parse_storage_addr(body: bytes, *, with_path_index: bool) -> StorageAddr:
    """Decode group(16) ip(n) port(8) [store_path_index(1)] from a tracker."""
    tail = 9 if with_path_index else 8
    ip_len = len(body) - GROUP_LEN - tail
    if ip_len < 7:
        raise ValueError(f"tracker answer of {len(body)} bytes is too short")
    group = unpack_fixed(body[:GROUP_LEN])
    host = unpack_fixed(body[GROUP_LEN : GROUP_LEN + ip_len])
    port = read_u64(body, GROUP_LEN + ip_len)
    index = body[-1] if with_path_index else 0
    return StorageAddr(group, host, port, index)


def parse_file_info(body: bytes) -> FileInfo:
    if len(body) < 24:
        raise ValueError(f"file info answer of {len(body)} bytes is too short")
    return FileInfo(
        size=read_u64(body, 0),
        create_time=read_u64(body, 8),
        crc32=read_u64(body, 16),
        source_ip=unpack_fixed(body[24:]),
    )


# -- errors -----------------------------------------------------------------


class FastDFSError(BackendError):
    """Mixin data of an error status answered by a FastDFS server."""

    status: int = 0


class FastDFSNotFound(NotFound, FastDFSError):
    """ENOENT: no such file (or group)."""


class FastDFSRejected(InvalidState, FastDFSError):
    """EINVAL and friends: the request does not fit the file (modify past EOF,
    append to a normal file, download of an empty file, unknown command)."""


class FastDFSServerError(BackendUnavailable, FastDFSError):
    """Any other errno (EIO, ENOSPC, EBUSY, …): retry later."""


#: errnos that mean "this request can never succeed as sent"
_REJECTED = {errno.EINVAL, errno.EEXIST, errno.EOPNOTSUPP, errno.ENOSYS, errno.EISDIR}


def status_error(status: int, what: str) -> BackendError:
    """The project error for a non-zero status answered to ``what``."""
    name = errno.errorcode.get(status, "?")
    message = f"FastDFS {what}: errno {status} ({name})"
    exc: FastDFSError
    if status == errno.ENOENT:
        exc = FastDFSNotFound(message)
    elif status in _REJECTED:
        exc = FastDFSRejected(message)
    else:
        exc = FastDFSServerError(message)
    exc.status = status
    return exc
