"""Test helpers. ``tests.support.gateway`` moved to ``testservers.gateway``
(shared with ``bench/``); the old name stays importable for branches written
before the move."""

from __future__ import annotations

import importlib
import sys

sys.modules[f"{__name__}.gateway"] = importlib.import_module("testservers.gateway")
