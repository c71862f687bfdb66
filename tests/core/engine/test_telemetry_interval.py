"""``$RUSTRONAUT_TELEMETRY_INTERVAL``: the test knob that shortens the decision-telemetry
send interval (the console's browser test uses it); anything malformed keeps the default."""

from __future__ import annotations

import pytest

from core.engine import wiring

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 10.0),
        ("  ", 10.0),
        ("0.3", 0.3),
        ("5", 5.0),
        ("3600", 3600.0),
        ("0.05", 10.0),  # too short: a busy loop
        ("3601", 10.0),
        ("-1", 10.0),
        ("nan", 10.0),
        ("soon", 10.0),
    ],
)
def test_interval_from_the_environment(text: str, expected: float) -> None:
    assert wiring._telemetry_interval(text) == expected
