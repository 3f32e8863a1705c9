"""The import rules of ARCHITECTURE.md §1, read from the source: protocols
(and the object URLs, ``gateway/objects.py``) use only the core's public
surface (``gateway/core/__init__.py``) and never reach a backend, the state
store, the locks or a bucket's internals through the service; backends
import nothing of the gateway."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: what serves clients over HTTP: the protocols and the gateway's object URLs
PROTOCOLS = [
    *sorted((ROOT / "gateway" / "protocols").rglob("*.py")),
    ROOT / "gateway" / "objects.py",
]
BACKENDS = sorted((ROOT / "backends").rglob("*.py"))

#: what the service holds that a protocol must not touch (it calls methods instead)
SERVICE_INTERNALS = {"ledger", "state", "locks", "backends", "buckets", "bucket", "events"}


def _imports(tree: ast.Module) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            if node.module in ("gateway", "gateway.core"):
                # ``from gateway.core import errors`` names a core module too
                found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return found


def _is_service(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return node.id == "service"
    return isinstance(node, ast.Attribute) and node.attr == "service"


def _protocol_problems(source: str) -> list[str]:
    tree = ast.parse(source)
    problems = []
    core_modules = {p.stem for p in (ROOT / "gateway" / "core").iterdir() if p.suffix == ".py"}
    core_modules |= {p.name for p in (ROOT / "gateway" / "core").iterdir() if p.is_dir()}
    for line, name in _imports(tree):
        parts = name.split(".")
        if parts[:2] == ["gateway", "core"] and len(parts) > 2 and parts[2] in core_modules:
            problems.append(f"{line}: imports {name} (use the names of gateway.core)")
        if parts[0] in ("backends", "boto3", "botocore", "aiobotocore", "redis"):
            problems.append(f"{line}: imports {name}")
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in SERVICE_INTERNALS
            and _is_service(node.value)
        ):
            problems.append(f"{node.lineno}: reaches service.{node.attr}")
    return problems


def test_the_checker_finds_what_it_forbids() -> None:
    assert len(PROTOCOLS) > 20 and len(BACKENDS) > 10
    source = (
        "from gateway.core.errors import BadRequest\n"
        "from gateway.core import errors as core, Kind\n"
        "import backends.base\n"
        "prefix = ctx.service.bucket('b').prefix\n"
        "service.state.get('x')\n"
    )
    assert _protocol_problems(source) == [
        "1: imports gateway.core.errors (use the names of gateway.core)",
        "2: imports gateway.core.errors (use the names of gateway.core)",
        "3: imports backends.base",
        "4: reaches service.bucket",
        "5: reaches service.state",
    ]
    assert _protocol_problems("from gateway.core import BadRequest, Kind\n") == []


@pytest.mark.parametrize("path", PROTOCOLS, ids=lambda p: str(p.relative_to(ROOT)))
def test_protocols_see_only_the_core_public_surface(path: Path) -> None:
    assert _protocol_problems(path.read_text()) == []


def test_backends_import_nothing_of_the_gateway() -> None:
    problems = []
    for path in BACKENDS:
        tree = ast.parse(path.read_text(), str(path))
        for line, name in _imports(tree):
            if name.split(".")[0] == "gateway":
                problems.append(f"{path.relative_to(ROOT)}:{line}: imports {name}")
    assert problems == []
