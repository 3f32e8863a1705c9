"""OpenStack Swift backend: streams are segment objects, objects are Static
Large Object (SLO) manifests over them — finishing or assembling moves no bytes.

Plain HTTP with aiohttp's client (``client.py``); auth is tempauth v1
(``X-Auth-User``/``X-Auth-Key`` → ``X-Storage-Url`` + token) or Keystone v3
(password → token + the catalog's object-store endpoint). A 401 re-authenticates
once and retries; tokens are renewed shortly before they expire.

Layout in the account::

    <container>/<key>                      a finished object: an SLO manifest
                                           (an empty plain object for 0 bytes; a
                                           plain object for a small stream
                                           written whole, ``plain.py``)
    <segments>/<stream>/<start>-<write>    a segment: the stream's bytes from offset
                                           <start>, written by the write that began
                                           at offset <write> (16 hex digits each)
    <segments>/<stream>/manifest/<l>-<i>   sub-manifest i of nesting level l, when an
                                           object has more than max_manifest_segments
    <segments>/<stream>/owner              marker: the key of the object whose
                                           manifest references this stream's pieces
                                           (none if that is the stream's own key)

``<segments>`` is ``segments_container`` (default ``<container>_segments``);
``<stream>`` is the stream id (its SHA-256 if it is not plain ``[A-Za-z0-9_-]``).
``StreamInfo.state`` is ``{"segments": [[name, size, etag], ...]}`` in order;
sizes add up to the stream's offset.

Writing (``writer.py``): the body is streamed into segment PUTs (chunked
transfer; nothing is buffered beyond one chunk of look-ahead, so no memory
budget is drawn) and cut every ``max_segment_size`` bytes. A last segment
below ``min_segment_size`` is a *tail*: the next write streams it back from
Swift into the front of its first segment (a new name, since ``<write>``
differs), so small client chunks do not become thousands of tiny segments.
The old tail is deleted only in ``after_commit``; ``rollback`` deletes the
write's new segments. A body cut short still ends its segment cleanly, so what
arrived is kept. If Swift fails, ``BackendUnavailable.partial`` holds the
segments stored before the failure. Repeating a write from the same state
reuses the same names, overwriting instead of duplicating.

Ownership — who deletes what, so that nothing is orphaned and nothing in use
is deleted:

1. A stream owns everything under ``<stream>/`` until an object references it.
   The stream's *owners* are the object named by its ``owner`` marker and, for
   a stream with a key of its own (``StreamInfo.key``, a plain tus upload), the
   object at that key.
2. ``commit`` and ``assemble`` first write the ``owner`` marker of each stream
   whose own key is not the object's key (a tus upload committed to its key
   needs none: the key names its owner already), then the sub-manifests and
   the manifest. From then on, the referenced segments and sub-manifests belong
   to the object; ``commit`` also deletes the stream's unreferenced pieces
   (writes that were never committed), found by listing ``<stream>/``.
3. ``discard_stream`` deletes every piece under ``<stream>/`` (listed, plus
   those in the state) except those its owners' manifests reference; the
   marker goes too unless its object still references something. So
   discarding an assembled part or a committed upload, or discarding twice,
   leaves the object whole, and a crash between marker and manifest leaves
   nothing behind.
4. ``delete_object`` deletes the manifest with ``?multipart-manifest=delete``
   (segments and sub-manifests with it), then the owners' markers.
5. Replacing an object (a new manifest at the same key) deletes, after the new
   manifest is in place, what the old one referenced and the new one does not.
   An object of at most a few segments (no sub-manifests) is first written
   with ``If-None-Match: *``: at a new key nothing is replaced and the old
   object is never read; if Swift answers 412 the old manifest is read, then
   the new one written, as for larger objects (which read it first).
6. A stream belongs to at most one object. Assembling a stream that another
   existing object (an owner) references (a tus partial in a second final)
   first copies its segments server-side (``X-Copy-From``) under a stream of
   their own, ``<stream id>-for-<SHA-256 of the key>``, owned by the new
   object like any stream: deleting either object never breaks the other.

Requests: an upload on its own key of at most ``plain_object_size`` whose
bytes arrive in one write, its object allowed then (no hook, checksum or
insert-only check still to come), is one plain object PUT (``plain.py``: a
Qiniu form file, a tus upload sent in one PATCH). Otherwise a 1-segment tus
upload committed to its own key costs a segment PUT, the manifest PUT (Swift
HEADs each segment) and one listing; a stream without a key of its own (a
Qiniu file, a part) adds the marker PUT. Listings stop at
the first page shorter than the limit.

Object metadata: the manifest's ``Content-Type`` is ``ObjectMeta.content_type``
(else guessed from the key). Expiry (``Capability.OBJECT_EXPIRY``): with
``ObjectMeta.delete_at`` the manifest, every piece it references and the owner
markers get ``X-Delete-At``, and Swift's object expirer deletes them.

URLs: ``url.mode`` ``tempurl`` (HMAC-SHA256 temp URL with the account's
``Temp-URL-Key``: ``temp_url_key``, written at start-up when
``set_temp_url_key``, else read from the account), ``public`` (the plain
object URL; ``.r:*`` is set on containers this backend creates),
or ``gateway``. Public SLOs need both containers readable (Swift fetches the
segments as the anonymous reader).

Permissions: read/write on both containers (plus create, with
``create_containers``); account POST only for ``set_temp_url_key``.
"""

from backends.swift.backend import SwiftBackend
from backends.swift.config import SwiftConfig

__all__ = ["SwiftBackend", "SwiftConfig"]
