"""Node scripts that drive Debian's chromium through playwright-core
(tests/js/*_browser.mjs): run one, get the JSON line it prints last."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from testservers.gateway import ROOT

JS_DIR = ROOT / "tests" / "js"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def run_browser_script(script: str, *args: str, timeout: float = 240) -> dict[str, Any]:
    """``node tests/js/<script> ARGS...`` with chromium at ``CHROMIUM``; its
    last stdout line as JSON (exit status 0 asserted)."""
    node = shutil.which("node")
    assert node, "node is required (scripts/install-test-deps.sh installs it)"
    assert Path(CHROMIUM).exists(), "chromium is required (scripts/install-test-deps.sh)"
    assert (JS_DIR / "node_modules" / "playwright-core").is_dir(), (
        "tests/js/node_modules lacks playwright-core: run scripts/install-test-deps.sh"
    )
    proc = subprocess.run(
        [node, str(JS_DIR / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=JS_DIR,
        env={**os.environ, "CHROMIUM": CHROMIUM},
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result
