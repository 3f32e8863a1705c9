"""Backend type name → implementing class, imported lazily so that a missing
optional SDK only matters when its backend is configured."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from backends.base import Backend
from backends.errors import BackendConfigError


@dataclass(frozen=True)
class _Entry:
    module: str
    cls: str
    extra: str | None  # the pip extra that installs the SDK


BACKEND_TYPES: dict[str, _Entry] = {
    "local": _Entry("backends.local", "LocalBackend", None),
    "s3": _Entry("backends.s3", "S3Backend", "s3"),
    "swift": _Entry("backends.swift", "SwiftBackend", "swift"),
    "fastdfs": _Entry("backends.fastdfs.backend", "FastDFSBackend", None),
}


def backend_class(type_name: str) -> type[Backend]:
    """The class for ``type_name``; a clear error if unknown or not installed."""
    entry = BACKEND_TYPES.get(type_name)
    if entry is None:
        known = ", ".join(sorted(BACKEND_TYPES))
        raise BackendConfigError(f"unknown backend type {type_name!r} (known: {known})")
    try:
        module = importlib.import_module(entry.module)
    except ModuleNotFoundError as exc:
        if entry.extra and not (exc.name or "").startswith("backends"):
            raise BackendConfigError(
                f"backend type {type_name!r} needs {exc.name!r}: "
                f"pip install 'upload-gateway[{entry.extra}]'"
            ) from exc
        raise BackendConfigError(f"backend type {type_name!r} is not available: {exc}") from exc
    cls: type[Backend] = getattr(module, entry.cls)
    return cls
