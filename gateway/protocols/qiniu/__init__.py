"""Qiniu (Kodo) upload API on the gateway core: upload tokens and put
policies, form upload, resumable v1 (mkblk/bput/mkfile) and v2 (multipart).
ARCHITECTURE.md §8 says what the official SDKs require.

Upload tokens, put policies and magic variables are the access layer's
(``gateway.access``), shared with tus and object reads. Modules here:
``ctx``/``errors``/``callback``/``mime`` are protocol-pure; ``form``,
``v1``, ``v2`` are the endpoints (on the core's multipart sessions), ``shared``
holds their helpers and ``placing`` their shared last step; ``responses``
renders errors, ``X-Reqid`` and CORS. ``upload-gateway token`` is the access
layer's (``gateway/access/cli.py``).
"""

from gateway.protocols.qiniu.routes import setup

__all__ = ["setup"]
