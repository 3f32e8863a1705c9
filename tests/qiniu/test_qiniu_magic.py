from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from gateway.access.magic import Mode, Value, build_vars, ext_of, render

NOW = datetime(2024, 3, 5, 7, 8, 9, tzinfo=UTC)


def _vars(**kw: Any) -> dict[str, Value]:
    base: dict[str, Any] = dict(
        bucket="bkt",
        key='a "b"/c.jpg',
        etag="Fxx",
        fsize=12,
        mime_type="image/jpeg",
        fname="photo.JPG",
        end_user="u1",
        url="http://h/o",
        custom={"x:foo": 'q"\n'},
        now=NOW,
        uuid="U-1",
    )
    base.update(kw)
    return build_vars(**base)


def test_json_rendering_quoted_and_bare() -> None:
    template = (
        '{"key":$(key),"k2":"$(key)","size":$(fsize),"s2":"$(fsize)","foo":$(x:foo),'
        '"missing":$(x:nope),"m2":"pre$(imageInfo.width)post","url":$(url),"esc":"a\\"$(bucket)"}'
    )
    out = json.loads(render(template, _vars(), Mode.JSON))
    assert out == {
        "key": 'a "b"/c.jpg',
        "k2": 'a "b"/c.jpg',
        "size": 12,
        "s2": "12",
        "foo": 'q"\n',
        "missing": None,
        "m2": "prepost",
        "url": "http://h/o",
        "esc": 'a"bkt',
    }


def test_save_key_raw_with_time_and_ext() -> None:
    out = render("up/$(year)/$(mon)/$(day)/$(hour)$(min)$(sec)-$(uuid)$(ext)", _vars(), Mode.RAW)
    assert out == "up/2024/03/05/070809-U-1.JPG"
    assert render("$(etag)$(nope)", _vars(), Mode.RAW) == "Fxx"
    assert render("unterminated $(key", _vars()) == "unterminated $(key"


def test_form_rendering() -> None:
    out = render("key=$(key)&size=$(fsize)&x=$(x:foo)", _vars(), Mode.FORM)
    assert out == "key=a%20%22b%22%2Fc.jpg&size=12&x=q%22%0A"


def test_ext_fallbacks() -> None:
    assert ext_of(None, "dir/k.png", None) == ".png"
    assert ext_of("noext", None, "image/png") == ".png"
    assert ext_of(None, None, "application/octet-stream") == ""
    assert _vars(fname=None, key="k")["fprefix"] is None
