"""The core's vocabulary: what protocols (``gateway/protocols``, the object
URLs) may use. They import from here, never from the core's modules, and
never touch the state store, locks or a backend: the service does.

``UploadService`` (its methods and ``service.multipart``), the records it
returns (``UploadRecord``, ``Kind``, ``Status``), multipart ``Session`` and
``Part``, the errors (``errors``: render them, each protocol its own way),
what a protocol hands in (a ``Checksum``, ``Hasher``s fed as bytes pass, an
``ObjectMeta`` for the object made, ``BodyInterrupted`` from its body
iterator) and ``object_meta`` (an object's content type and lifetime on its
record).
"""

from backends.base import MemoryBudget, ObjectMeta
from gateway.core import errors, object_meta
from gateway.core.body import BodyInterrupted, Hasher
from gateway.core.checksums import ALGORITHMS, Checksum, Crc32, TrailerChecksum
from gateway.core.multipart import MAX_PART_NUMBER, Admit, Part, Session
from gateway.core.records import Kind, Status, UploadRecord, new_upload_id
from gateway.core.service import UploadService

__all__ = [
    "ALGORITHMS",
    "MAX_PART_NUMBER",
    "Admit",
    "BodyInterrupted",
    "Checksum",
    "Crc32",
    "Hasher",
    "Kind",
    "MemoryBudget",
    "ObjectMeta",
    "Part",
    "Session",
    "Status",
    "TrailerChecksum",
    "UploadRecord",
    "UploadService",
    "errors",
    "new_upload_id",
    "object_meta",
]
