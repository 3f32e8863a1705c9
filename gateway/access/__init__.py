"""The access layer: who may upload what, and who may read it.

Every protocol (tus, Qiniu) and object reads consult it; no protocol
implements authorization itself. Modules: ``tokens`` (upload tokens: sign,
mint, verify), ``policy`` (the put policy a token carries and its rules),
``magic`` (``$(name)`` variables in keys and bodies), ``qetag`` (Qiniu's
content hash, ``$(etag)``), ``codec`` (URL-safe base64), ``errors`` (the
refusals). This package imports no protocol.
"""
