"""S3-compatible object stores (AWS, MinIO, Ceph RGW, Swift's s3api): ``type: s3``.

How bytes become an object
--------------------------
A stream is a multipart upload. Part *n* always holds the stream's bytes
``[(n-1)·P, n·P)`` for the stream's part size *P* (``part_size``, grown so
that no object needs more than ``max_parts``; never below ``min_part_size``),
so a write repeated after a crash overwrites the same parts. Bytes past the
last full part — a small client chunk, a body cut short — are kept as small
temporary *tail pieces*, each a new object named by its byte range, and go
into the next part once it is full (fetched then, never re-sent on every
write). When a request announces enough bytes to fill a part
(``StreamInfo.incoming``, its Content-Length), the part is forwarded to the
store while its bytes arrive instead of after (``backends/s3/parts.py``).
When a write ends exactly on a part boundary, the next part's UploadPart is
opened at once and fed by the next write if it starts there and fills it;
otherwise it is cancelled (``backends/s3/preopen.py``: per process, bounded
by ``preopen_parts`` and ``preopen_timeout``, no bytes buffered; a part cut
short is never stored, so nothing depends on it).
Finishing copies the tail into the last part (``UploadPartCopy``: no bytes
through the gateway) and completes the upload. A stream whose declared
length is at most ``part_size`` (a photo-sized tus upload, a Qiniu block or v2
part) never opens a multipart upload: the write that brings it to its length
stores it whole with one PutObject, after the bytes of any shorter writes
before it, which were kept as tail pieces. Buffered bodies (such objects,
tail pieces, parts not forwarded) are sent as the chunks that arrived, never
joined, 256 KiB per socket write (``store.PacedBody``), so memory holds each
byte once, within the memory budget. A stream of unknown length (a
Qiniu form file, tus ``Upload-Defer-Length``) opens its multipart upload only
when a part's worth of bytes has arrived; one that ends smaller becomes a
plain object (a temporary's single tail piece is kept as that object).
Whole objects carry their CRC32 (``x-amz-checksum-crc32``) instead of an
MD5. The state the core persists per stream is the UploadId, the parts'
ETags (and CRC32s) and the tail pieces (``backends/s3/state.py``); nothing
else is kept anywhere.

Checksums
---------
When parts carry CRC32 (``multipart_checksum: auto`` on a store that checks
it, or ``CRC32``) every multipart upload declares CRC32 and every part
carries it, as AWS then requires: a buffered part in
``x-amz-checksum-crc32``, a forwarded part in an aws-chunked trailer
(``Content-Encoding: aws-chunked``, ``x-amz-content-sha256:
STREAMING-UNSIGNED-PAYLOAD-TRAILER``, one chunk, exact Content-Length), an
``UploadPartCopy`` part the CRC32 the store reports; CompleteMultipartUpload
lists them. The store verifies each part, and none has to re-read the whole
object at completion (moto does, for uploads without an algorithm).
Otherwise buffered parts and objects carry Content-MD5 and a forwarded
part's ETag is compared with its MD5. ``auto`` (the default) decides from a
start-up probe of what the store really checks (``backends/s3/probe.py``,
``backends/s3/integrity.py``: Ceph RGW 16 takes CRC32s without checking them,
Swift 2.30's s3api refuses them); a stream keeps the choice it was created
with.

A stream's tail, and a finished stream, can be read back (``read_stream``: a
Qiniu block, always below the part size, is all tail); bytes already in
parts cannot, until the stream finishes.

Layout in the bucket
--------------------
``<key>``
    finished objects. A plain upload's multipart upload is opened on its
    final key, so finishing it moves no bytes (CompleteMultipartUpload).
``<temp_prefix>streams/<stream id>``
    a stream without a final key (tus partial upload, Qiniu block): its
    multipart upload, then the finished object until it is assembled
    (``UploadPartCopy`` of each stream when all but the last are at least
    ``min_part_size``, else a bounded copy-through, which fetches sources no
    larger than a part a few ahead) or discarded.
``<temp_prefix>tails/<stream id>/<start>-<end>``
    tail pieces (offsets zero-padded to 15 digits). Deleted once a saved
    state no longer refers to them ("write new, commit, delete old"); at
    commit, the stream's tails prefix is also listed, after the answer, for
    pieces of a write whose state was never saved.

``temp_prefix`` defaults to ``.upload-gateway/``. Terminate and expiry abort
the multipart upload and delete the stream's temporaries. A crash in the
middle of an assembly can leave an incomplete multipart upload on the target
key: add a lifecycle rule ``AbortIncompleteMultipartUpload`` (a few days) to
the bucket to reap such leftovers.

Permissions (IAM policy on the bucket)
--------------------------------------
``s3:ListBucket`` (HeadBucket, ListObjectsV2 on the tails prefix),
``s3:GetObject``, ``s3:PutObject`` (covers multipart uploads and
UploadPartCopy), ``s3:DeleteObject``, ``s3:AbortMultipartUpload``; for
``create_bucket: true`` also ``s3:CreateBucket``. Presigned URLs carry the
gateway's own ``s3:GetObject`` right.

URLs for business services
--------------------------
``url: {mode: presigned, ttl: 1h}`` (0 = the gateway's ``uploads.url_ttl``),
``{mode: public, base_url: https://cdn.example/bucket}``, or
``{mode: gateway}`` (default: the gateway's own ``/objects/...``).
"""

from backends.s3.backend import S3Backend
from backends.s3.config import S3Config

__all__ = ["S3Backend", "S3Config"]
