"""``core.text.https_link``: only an https URL with a host and no credentials is a link."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.text import https_link


@pytest.mark.parametrize(
    "url",
    [
        "https://help.corp.example",
        "https://help.corp.example/",
        "https://help.corp.example:8443/kb/vpn?lang=en#top",
        "https://login.corp.example/device?user_code=WDJB-MJHT",
        "https://[2001:db8::1]/help",
        "https://xn--bcher-kva.example/",
    ],
)
def test_https_urls_with_a_host_are_links(url: str) -> None:
    assert https_link(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "file:///etc/passwd",
        "data:text/html,<b>hi</b>",
        "http://help.corp.example",  # readable and changeable on the way
        "ftp://help.corp.example",
        "//help.corp.example",
        "help.corp.example",
        "https://",
        "https:///path-only",
        "https:help.corp.example",
        "HTTPS://help.corp.example",
        "https://user:secret@help.corp.example/",  # credentials in a link
        "https://help.corp.example@evil.example/",  # reads as corp, goes to evil
        "https://help.corp.example:99999/",
        "https://help.corp.example:0/",
        "https://help.corp.example:port/",
        "https://help.corp.example/\nFAKE",
        "https://help.corp.example/\x1b[31m",
        "https://help.corp.example/a b",
        "https://help.corp.example/\u202egnp",
        "https://help.corp.example/\u200b",
        'https://help.corp.example/"><img src=x>',
        "https://help.corp.example\\@evil.example/",
        " https://help.corp.example",
        "",
        None,
        42,
        "https://" + "a" * 2048 + ".example/",
    ],
)
def test_anything_else_is_not_a_link(url: object) -> None:
    assert https_link(url) is None


@given(st.text(max_size=200))
def test_a_link_is_always_https_with_a_host(text: str) -> None:
    link = https_link(text)
    if link is not None:
        assert link.startswith("https://")
        assert link == text
        assert not any(ch.isspace() or not ch.isprintable() for ch in link)


def test_safe_json_keeps_the_value_and_escapes_what_a_terminal_acts_on() -> None:
    import json

    from core.text import safe_json

    value = {"name": "x\x9b2J \u202eevil\x7f \u200b ünïcode 日本", "n": 1}
    document = json.dumps(value, ensure_ascii=False, indent=2)
    shown = safe_json(document)
    assert json.loads(shown) == value
    assert not any(ch in shown for ch in "\x9b\u202e\x7f\u200b")
    assert "ünïcode 日本" in shown  # letters stay letters
    assert shown.count("\n") == document.count("\n")  # the layout is the encoder's
