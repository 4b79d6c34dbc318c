"""The provider fixtures (tests/fixtures/provider/): reading one, and the check every
fixture goes through, seed or recorded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from studio.dashscope.smoke import FIXTURE_CALLS, parsed_view

REQUIRED = ("source", "call", "http_status", "edited", "expect", "response")


def load_fixture(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def assert_well_formed(fixture: dict[str, Any]) -> None:
    missing = [key for key in REQUIRED if key not in fixture]
    assert not missing, f"fixture lacks {missing}"
    assert fixture["call"] in FIXTURE_CALLS
    is_error = not 200 <= fixture["http_status"] < 300
    assert is_error == (fixture["call"] == "error"), "only a non-2xx answer is an error"
    assert fixture["expect"], "a fixture expects something"
    if "seed_file" in fixture:
        assert fixture["source"].startswith("seed "), fixture["source"]
        assert isinstance(fixture["first_line"], int)
    else:
        assert fixture["source"].startswith("recorded "), fixture["source"]


def assert_parses_as_expected(fixture: dict[str, Any]) -> None:
    """The check every fixture goes through, seed or recorded."""
    assert_well_formed(fixture)
    observed = parsed_view(fixture["call"], fixture["http_status"], fixture["response"])
    unknown = sorted(set(fixture["expect"]) - set(observed))
    assert not unknown, f"expect names keys the parser does not yield: {unknown}"
    for key, expected in fixture["expect"].items():
        assert observed[key] == expected, f"{key}: parsed {observed[key]!r}, expected {expected!r}"
