"""Local-disk quirks: safe key mapping, layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.local import encode_key


@pytest.mark.parametrize(
    "key",
    ["../x", "../../etc/passwd", "/abs/path", "a/../../b", "..", ".", "a//b", "a/", "\x00evil"],
)
def test_keys_never_leave_the_objects_directory(tmp_path: Path, key: str) -> None:
    root = tmp_path / "objects"
    path = (root / encode_key(key)).resolve()
    assert path.is_relative_to(root.resolve())
    assert ".." not in encode_key(key).parts


def test_distinct_keys_map_to_distinct_paths() -> None:
    keys = ["a", "a/b", "a/", "a%d", "a%2Fb", "a/b/c", "", ".", "..", "x" * 300, "x" * 301]
    paths = set()
    for key in keys:
        if not key:
            with pytest.raises(ValueError):
                encode_key(key)
            continue
        paths.add(encode_key(key))
    assert len(paths) == len(keys) - 1


def test_a_key_and_its_directory_can_both_exist() -> None:
    assert encode_key("a") != encode_key("a/b").parent
