"""HTTP's resumable uploads (draft-ietf-httpbis-resumable-upload, interop
versions 3 to 8) on the tus upload path, over the same core: an upload made
here is an ordinary upload, and tus clients can read it back.

``applies(request)`` tells the tus routes to hand a request to ``handle``.
"""

from gateway.protocols.ietf.routes import applies, handle

__all__ = ["applies", "handle"]
