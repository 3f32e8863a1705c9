"""Whole-object digests, computed while the bytes pass (issue 19).

Every stream is hashed as its bytes go through ``GuardedBody`` to the store:
SHA-256 always, SHA-512 too when the creation declared one. The hashers are
``rehashes``' (SHA-2 whose state serialises: ``hashlib``'s cannot), so the
state is kept on the record — ``extra[STATE] = {"offset": N, "sha-256":
<base64 state>, …}`` — in the same compare-and-set save as the offset ``N``
it is the hash of (bytes ``[0, N)``). Any instance continues it, after a
crash too.

A write whose store kept fewer bytes than were hashed (the store failed
part-way) leaves the state behind the offset; the next write or the finish
catches up by reading only the missing bytes back from the stream (a
WARNING and ``upload_gateway_digest_rereads_total``). Where the store cannot
read them yet (S3 bytes already in multipart parts), the finish reads the
sealed stream back instead.

A stream whose key names its content (``object_meta.key_by_etag``) is
hashed with Qiniu's qetag too (``access/qetag.py``: SHA-1 per 4 MiB block,
its state serialised the same way), whatever the bucket's ``digest``.

When a stream completes, ``conclude`` puts the SHA-256 (lowercase hex) in
``extra[SHA256]`` (and the qetag in ``extra[QETAG]``) and compares each declared digest
(``gateway.digest_fields.DECLARED``): a mismatch is refused before anything
is sealed or committed (``DigestMismatch``, 460), and the record becomes a
tombstone whose ``extra[REJECTED]`` says why (its id answers 460 until swept).

An assembly's digest is over the concatenation. SHA-256 states cannot be
combined, so ``concatenation`` continues the first part's kept state with
the bytes of the other parts read back from the store: a final of n parts
re-reads all but its first part, once, before it is assembled. A multipart
session's parts that arrived in order carry a state chained through them
(``digest_chain``): what that chain covers is not read back.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import rehashes

from gateway.access import qetag
from gateway.core import digest_chain, object_meta
from gateway.core.errors import BadRequest, ChecksumMismatch, ServiceUnavailable
from gateway.core.records import UploadRecord
from gateway.digest_fields import DECLARED

log = logging.getLogger(__name__)

#: the finished object's SHA-256, lowercase hex
SHA256 = object_meta.SHA256
#: the object's qetag (``$(etag)``), for a stream named by it
QETAG = object_meta.QETAG
#: the hashers' state and the offset it is the hash of
STATE = "core:digest-state"
#: why an upload was refused at its last byte (on its tombstone)
REJECTED = "core:rejected"

_HASHERS: dict[str, Callable[[], Any]] = {
    "sha-256": rehashes.PySha256,
    "sha-512": rehashes.PySha512,
    "qetag": qetag.Running,
}

#: reads bytes [start, end) of a stream
Reader = Callable[[int, int], AsyncIterator[bytes]]


class DigestMismatch(ChecksumMismatch):
    """The bytes of a complete upload do not match the digest its creation declared."""

    code = "digest-mismatch"


class Running:
    """The hashers of one stream, fed as its bytes pass (a ``Hasher``)."""

    def __init__(self, offset: int, hashers: dict[str, Any]) -> None:
        self.offset = offset
        self._hashers = hashers

    @classmethod
    def fresh(cls, algorithms: Sequence[str]) -> Running:
        return cls(0, {a: _HASHERS[a]() for a in algorithms})

    @classmethod
    def load(cls, saved: dict[str, Any], algorithms: Sequence[str]) -> Running | None:
        """The hashers saved on a record; None if one of ``algorithms`` is missing."""
        try:
            hashers = {
                a: _HASHERS[a].deserialize(base64.b64decode(saved[a]))  # type: ignore[attr-defined]
                for a in algorithms
            }
            return cls(int(saved["offset"]), hashers)
        except (KeyError, TypeError, ValueError):
            return None

    def update(self, data: bytes, /) -> None:
        if type(data) is not bytes:
            data = bytes(data)
        for h in self._hashers.values():
            h.update(data)
        self.offset += len(data)

    def saved(self) -> dict[str, Any]:
        out: dict[str, Any] = {"offset": self.offset}
        for a, h in self._hashers.items():
            out[a] = base64.b64encode(h.serialize()).decode()
        return out

    def hexdigests(self) -> dict[str, str]:
        """The digests of the bytes so far (the hashers go on)."""
        return {a: str(h.finalize()).lower() for a, h in self._hashers.items()}


def declared(record: UploadRecord) -> dict[str, str]:
    found = record.extra.get(DECLARED)
    return found if isinstance(found, dict) else {}


def declare(record: UploadRecord, digests: dict[str, str]) -> None:
    """Digests of the whole upload declared after its creation (an IETF
    append's ``Repr-Digest``): one that contradicts an earlier declaration is
    a ``BadRequest``; an algorithm the upload has not been hashed with since
    its first byte is ignored (logged), as RFC 9530 lets a recipient do."""
    known = declared(record)
    hashed = record.offset == 0 or set(algorithms(record))
    added: dict[str, str] = {}
    for algorithm, value in digests.items():
        if algorithm in known:
            if known[algorithm] != value.lower():
                raise BadRequest(f"Repr-Digest: {algorithm} differs from the one declared before")
        elif hashed is True or algorithm in hashed:
            added[algorithm] = value.lower()
        else:
            log.info(
                "upload %s: Repr-Digest %s ignored (declared after its first byte)",
                record.id,
                algorithm,
            )
    if added:
        record.extra[DECLARED] = {**known, **added}


def algorithms(record: UploadRecord) -> list[str]:
    """SHA-256, what else the creation declared that the gateway computes,
    and the qetag of a stream named by it."""
    named = ["qetag"] if object_meta.named_by_etag(record) else []
    return ["sha-256", *(a for a in declared(record) if a != "sha-256" and a in _HASHERS), *named]


def resume(record: UploadRecord) -> Running | None:
    """The hashers at ``record.offset``, if the saved state is of that offset."""
    saved = record.extra.get(STATE)
    if saved is None:
        return Running.fresh(algorithms(record)) if record.offset == 0 else None
    running = Running.load(saved, algorithms(record))
    return running if running is not None and running.offset == record.offset else None


async def catch_up(record: UploadRecord, read: Reader) -> Running | None:
    """The hashers at ``record.offset``: the saved state (or a fresh one)
    continued with the bytes it lacks, read back; None if they cannot be read."""
    saved = record.extra.get(STATE)
    running = Running.load(saved, algorithms(record)) if isinstance(saved, dict) else None
    if running is None or running.offset > record.offset:
        running = Running.fresh(algorithms(record))
    start = running.offset
    try:
        async for chunk in read(start, record.offset):
            running.update(chunk)
    except Exception as exc:
        log.warning(
            "upload %s: the digest cannot re-read bytes %d-%d yet (%s: %s)",
            record.id,
            start,
            record.offset,
            type(exc).__name__,
            exc,
        )
        return None
    if running.offset != record.offset:
        log.warning(
            "upload %s: re-reading bytes %d-%d for the digest gave %d bytes",
            record.id,
            start,
            record.offset,
            running.offset - start,
        )
        return None
    log.warning(
        "upload %s: the digest re-read bytes %d-%d from the store (they were "
        "stored without being hashed: a store failure or an older gateway)",
        record.id,
        start,
        record.offset,
    )
    return running


def keep(record: UploadRecord, running: Running | None, offset: int) -> None:
    """Before ``record`` is saved at ``offset``: keep the state if it is of that offset."""
    if running is None:
        return
    if running.offset == offset:
        record.extra[STATE] = running.saved()
    else:  # the store kept fewer bytes than passed: the state stays behind
        log.warning(
            "upload %s: the store kept bytes up to %d of the %d hashed; the digest "
            "will re-read the difference",
            record.id,
            offset,
            running.offset,
        )


def conclude(record: UploadRecord, running: Running) -> str | None:
    """The object's digests are known: record its SHA-256; why it must be
    refused, if a declared digest differs."""
    digests = running.hexdigests()
    record.extra[SHA256] = digests["sha-256"]
    if "qetag" in digests:
        record.extra[QETAG] = qetag.of_hex(digests["qetag"])
    for algorithm, want in declared(record).items():
        got = digests.get(algorithm)
        if got is not None and got != want.lower():
            return (
                f"Repr-Digest mismatch: the {running.offset} bytes received have "
                f"{algorithm}=:{_b64(got)}:, the upload declared {algorithm}=:{_b64(want)}:"
            )
    return None


def complete_sha256(running: Running, length: int | None) -> str | None:
    """The SHA-256 of a stream of ``length`` bytes once all have been hashed."""
    if length is None or running.offset != length:
        return None
    return running.hexdigests()["sha-256"]


def forget(record: UploadRecord) -> None:
    """An object's hashers are no longer needed once its digest is known."""
    record.extra.pop(STATE, None)
    record.extra.pop(digest_chain.CHAIN, None)


def _start(parts: Sequence[UploadRecord], wanted: Sequence[str]) -> tuple[Running, int]:
    """The hashers over the longest leading run of ``parts`` whose state is
    kept — the session's chain (``digest_chain``), else the first part's
    own state — and how many parts that run has (0: fresh hashers)."""
    state, count = digest_chain.prefix(parts)
    if state is not None:
        running = Running.load(state, wanted)
        if running is not None and running.offset == sum(p.offset for p in parts[:count]):
            return running, count
    saved = parts[0].extra.get(STATE) if parts else None
    if isinstance(saved, dict):
        running = Running.load(saved, wanted)
        if running is not None and running.offset == parts[0].offset:
            return running, 1
    return Running.fresh(wanted), 0


async def concatenation(
    assembly: UploadRecord, parts: Sequence[UploadRecord], reader: Callable[[UploadRecord], Reader]
) -> tuple[Running, int]:
    """The hashers over ``parts`` in order: the kept state of their leading
    run (``_start``) continued with the other parts' bytes, read back
    (``reader(part)``); and how many bytes were read back."""
    running, count = _start(parts, algorithms(assembly))
    first = running.offset
    for part in parts[count:]:
        start = running.offset
        async for chunk in reader(part)(0, part.offset):
            running.update(chunk)
        if running.offset - start != part.offset:
            got = running.offset - start
            raise ServiceUnavailable(f"part {part.id} read back {got} of {part.offset} bytes")
    return running, running.offset - first


async def continued(
    record: UploadRecord, parts: Sequence[UploadRecord], read: Reader, size: int
) -> tuple[Running, int]:
    """The hashers over an object of ``size`` bytes the store made itself
    from ``parts`` it cannot show before (Qiniu v2 parts written straight
    into an S3 multipart upload): the kept state of their leading run
    continued with the object's other bytes, read back (``read``: the
    object's bytes; nothing is read if the run covers them all); and how
    many bytes were read back."""
    running, _ = _start(parts, algorithms(record))
    first = running.offset
    if first < size:
        async for chunk in read(first, size):
            running.update(chunk)
    if running.offset != size:
        raise ServiceUnavailable(f"the object read back {running.offset} of {size} bytes")
    return running, running.offset - first


def _b64(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode()
