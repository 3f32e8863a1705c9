"""A form part's name and filename read by the fast path are aiohttp's."""

from __future__ import annotations

import pytest
from aiohttp import BodyPartReader
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from gateway.protocols.qiniu.form_parts import FormPart


def _both(
    header: str | None,
) -> tuple[tuple[str | None, str | None], tuple[str | None, str | None]]:
    headers: CIMultiDict[str] = CIMultiDict()
    if header is not None:
        headers["Content-Disposition"] = header
    ours = FormPart(b"--b", headers, None)  # type: ignore[arg-type]
    theirs = BodyPartReader(b"--b", headers, None)  # type: ignore[arg-type]
    return (ours.name, ours.filename), (theirs.name, theirs.filename)


@pytest.mark.parametrize(
    "header",
    [
        'form-data; name="token"',
        'form-data; name="file"; filename="a.bin"',
        'form-data; name="file"; filename="照片 1.jpg"',
        'form-data; name="file"; filename="a%20b.bin"',
        'form-data; name="file"; filename="a\\"b"',
        "form-data; name=file; filename=x.bin",
        "form-data; name=\"file\"; filename*=utf-8''%E7%85%A7.jpg",
        'form-data; name="x"; filename=""',
        'form-data; name=""',
        'attachment; name="a"',
        'form-data; name="a"; other="b"',
        'form-data;name="a"',
        'form-data; name=";;"',  # aiohttp: no name (Hypothesis found it)
        "",
        None,
    ],
)
def test_same_as_aiohttp(header: str | None) -> None:
    ours, theirs = _both(header)
    assert ours == theirs


_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=12)


@settings(max_examples=2000)
@given(
    name=_TEXT,
    filename=st.none() | _TEXT,
    separator=st.sampled_from(["; ", ";", " ; "]),
)
def test_same_as_aiohttp_for_any_quoted_values(
    name: str, filename: str | None, separator: str
) -> None:
    header = f'form-data{separator}name="{name}"'
    if filename is not None:
        header += f'{separator}filename="{filename}"'
    ours, theirs = _both(header)
    assert ours == theirs
