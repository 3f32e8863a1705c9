"""tus 1.0.0 front-end (creation, creation-with-upload, creation-defer-length,
termination, expiration, checksum, concatenation, concatenation-unfinished)."""

from gateway.protocols.tus.routes import setup

__all__ = ["setup"]
