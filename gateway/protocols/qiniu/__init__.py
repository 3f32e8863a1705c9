"""Qiniu (Kodo) upload API on the gateway core: upload tokens and put
policies, form upload, resumable v1 (mkblk/bput/mkfile) and v2 (multipart).
See docs/qiniu-protocol.md for what the official SDKs require."""
