"""``upload-gateway upload``: a command-line upload client.

It speaks the public protocols only (tus 1.0 with its ``concatenation``
extension, Qiniu's v2 multipart API), so it works against any tus server as
well as this gateway. Modules: ``files`` (what to upload), ``resume_store``
(upload URLs kept between runs), ``retry`` (which failures are retried),
``body`` (file ranges as request bodies), ``tus`` / ``qiniu`` (the protocols),
``progress`` (bars or plain lines), ``command`` (the subcommand).
"""
