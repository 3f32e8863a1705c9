"""The test-server launchers moved to ``testservers/`` (shared with ``bench/``).
These names stay importable for branches written before the move; import
``testservers`` in new code. (Delete this package once nothing uses it.)"""

from __future__ import annotations

import importlib
import sys

for _name in ("ceph", "fastdfs_server", "moto", "ports", "redis", "swift"):
    sys.modules[f"{__name__}.{_name}"] = importlib.import_module(f"testservers.{_name}")

from testservers import ServerBase, ServerStartError, serve_main  # noqa: E402

__all__ = ["ServerBase", "ServerStartError", "serve_main"]
