"""UploadService: the protocol-independent core, one object the protocols call.

It wires the concerns together over one shared ``Ledger`` (``ledger.py``:
buckets, records, compare-and-set saves, locks, the backend-error
translation) and offers their methods under one name:

* ``uploads.py`` — ``create``, ``write``, ``status``: streams and their bytes;
  ``put``: an object from bytes already at hand, approved before they are stored;
* ``assembly.py`` — ``create_assembly``, ``commit_part``: objects made of
  finished parts (a part that completes wakes the assemblies waiting for it:
  ``uploads`` raises the core event ``PART_COMPLETE``, ``assembly`` handles it);
* ``expiry.py`` — ``terminate``, ``expire``: the end of an upload, the sweeper
  (an assembly that ends unmade raises ``ASSEMBLY_ABANDONED``: ``assembly``
  releases its parts);
* ``reading.py`` — ``stat_object``, ``read``, ``read_stream``, ``object_url``.

* ``object_upload.py`` — ``object_upload``: an object written onto its key
  in the store's parts as its bytes arrive, made once the caller checked them;

* ``multipart`` (``multipart.py``) — sessions of numbered parts (Qiniu v1 and
  v2 use it): open, put a part, list, complete, abort.

``get`` is the record with its expiry checked; ``object_lock`` is held
while an object is replaced.

Errors are those of ``gateway.core.errors``; backend errors are translated in
``ledger.backend_errors`` (``BackendUnavailable`` → ``ServiceUnavailable``).
"""

from __future__ import annotations

from typing import Any

from backends.base import MemoryBudget
from gateway.core.assembly import Assembly
from gateway.core.events import ASSEMBLY_ABANDONED, PART_COMPLETE
from gateway.core.expiry import Expiry
from gateway.core.held import HeldBytes
from gateway.core.ledger import Bucket, Ledger
from gateway.core.multipart import Multipart
from gateway.core.object_upload import ObjectUpload, available
from gateway.core.reading import Reading
from gateway.core.records import RecordCheck, UploadRecord
from gateway.core.uploads import Uploads
from gateway.keys import key_problem

__all__ = ["Bucket", "UploadService"]


class UploadService:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.config = ledger.config
        self.state = ledger.state
        self.locks = ledger.locks
        self.backends = ledger.backends
        self.events = events = ledger.events
        self.buckets = ledger.buckets
        assembly = Assembly(ledger)
        events.subscribe(PART_COMPLETE, assembly.part_done)
        events.subscribe(ASSEMBLY_ABANDONED, assembly.abandoned)
        uploads = Uploads(ledger)
        expiry = Expiry(ledger)
        reading = Reading(ledger)
        #: sessions of numbered parts (``multipart.py``)
        self.multipart = Multipart(ledger, uploads, assembly, expiry)
        events.url_for = reading.hook_url

        self.bucket = ledger.bucket
        self.get = ledger.get
        self.now = ledger.now
        self.object_lock = ledger.object_lock
        self.settle = ledger.settle
        self.create = uploads.create
        self.put = uploads.put
        self.write = uploads.write

        async def status(
            upload_id: str, *, interrupt: bool = False, check: RecordCheck | None = None
        ) -> UploadRecord:
            record = await uploads.status(upload_id, interrupt=interrupt, check=check)
            return await assembly.settle_pending(record)

        self.status = status
        self.create_assembly = assembly.create_assembly
        self.commit_part = assembly.commit_part
        self.terminate = expiry.terminate
        self.expire = expiry.expire
        self.stat_object = reading.stat_object
        self.read = reading.read
        self.read_stream = reading.read_stream
        self.object_url = reading.object_url

    # -- what a protocol may know of a bucket and its store -----------------------------
    def has_bucket(self, name: str) -> bool:
        """Whether ``name`` is a configured bucket."""
        return name in self.buckets

    def key_problem(self, bucket: str, key: str) -> str | None:
        """Why ``key`` cannot be stored in ``bucket`` and served (its store key
        is the bucket's prefix + ``key``: ``gateway/keys.py``), or None."""
        return key_problem(key, self.bucket(bucket).prefix)

    def same_store(self, bucket: str, other: str) -> bool:
        """Whether two buckets are on one backend (a stream moves by commit)."""
        return self.bucket(bucket).backend is self.bucket(other).backend

    def hold(self, bucket: str) -> HeldBytes:
        """A place for bytes a request keeps in memory until it knows their
        key (``put``), charged to ``bucket``'s memory budget."""
        return HeldBytes(self.memory_budget(bucket))

    def creates_if_absent(self, bucket: str, size: int) -> bool:
        """Whether ``put`` of ``size`` bytes to ``bucket`` can make the object
        only if its key holds none (``if_absent``: one conditional write
        instead of a look before it)."""
        # an empty stream is made without a write: never conditionally
        return 0 < size <= self.bucket(bucket).backend.limits.create_if_absent

    def writes_objects_in_parts(
        self, bucket: str, if_absent: bool, at_most: int | None = None
    ) -> bool:
        """Whether ``object_upload`` can write an object of up to ``at_most``
        bytes (None: unknown) to ``bucket`` (with ``if_absent``: making it
        only where its key holds none)."""
        return available(self.ledger, bucket, if_absent, at_most)

    def object_upload(
        self,
        *,
        protocol: str,
        bucket: str,
        key: str,
        if_absent: bool,
        extra: dict[str, Any] | None = None,
    ) -> ObjectUpload:
        """The object ``key`` written in the store's parts as its bytes
        arrive, made by ``complete`` once the caller checked them
        (``object_upload.py``; only where ``writes_objects_in_parts``)."""
        return ObjectUpload(
            self.ledger, protocol=protocol, bucket=bucket, key=key, if_absent=if_absent, extra=extra
        )

    def memory_budget(self, bucket: str) -> MemoryBudget:
        """The memory budget a protocol's read-ahead for ``bucket`` draws on."""
        return self.bucket(bucket).backend.context.budget

    def max_object_size(self, bucket: str) -> int:
        """The largest object ``bucket``'s store accepts (0: no limit)."""
        return self.bucket(bucket).backend.limits.max_object_size
