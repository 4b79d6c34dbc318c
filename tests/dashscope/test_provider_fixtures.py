"""The client parses what the provider documents and what it really sent, not what the
emulator writes.

Every JSON answer printed in the seed documents, and every answer `manage.py
dashscope_smoke --record` saved from the real service, is a file in tests/fixtures/provider/.
Each is parsed verbatim by the client's own parser, chosen by the fixture's `call`, and every
key of its `expect` is compared with what the parser made of it (see `parsed_view`).

A fixture file holds:
  source        "seed 000 lines 175-204" or "recorded 2026-04-01 from <host>"
  seed_file, first_line, last_line   for seed fixtures: where the JSON block is
  kind          "wire" (the body as sent), "sdk-printed" (an SDK's printed object), "recorded"
  call          generate | fetch | submit | cancel | list | error
  http_status   the answer's HTTP status
  edited        "" or what was changed from the source, and why
  text_edits    optional [{"from": ..., "to": ...}]: the minimal edits of `edited`, applied to
                the seed text before it is compared, for an example that is not valid JSON
  expect        what the client must make of it
  response      the body
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from studio.dashscope.client import DashScopeClient
from studio.dashscope.wire import parse_result
from tests.support.provider_fixtures import assert_parses_as_expected, load_fixture

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "provider"
ROOT = Path(__file__).resolve().parents[2]
# The seeds live next to the repository, not in it; CI has them there too, read-only.
SEEDS = ROOT.parent / "shared" / "seeds"
NO_SEEDS = f"the seed documents are not at {SEEDS}; the fixtures are checked against them there"

# Keys that only an answer has: a JSON block in a seed holding one of them is an answer,
# not a request body or a fragment of one.
ANSWER_KEYS = frozenset({"output", "usage", "request_id", "requestId", "status_code"})


def seed_block(seed_text: str, first_line: int, edits: list[dict[str, str]]) -> tuple[Any, int]:
    """The JSON value that starts on `first_line` of a seed, and the line it ends on.

    The block ends where the JSON does: seeds glue the next heading onto the closing brace
    ("}Java"), and that text is not part of the answer.
    """
    lines = seed_text.splitlines(keepends=True)
    opening = lines[first_line - 1].find("{")
    assert opening >= 0, f"no JSON object starts on line {first_line}"
    start = sum(len(line) for line in lines[: first_line - 1]) + opening
    head, block = seed_text[:start], seed_text[start:]
    for edit in edits:
        assert edit["from"] in block, f"the edit {edit} no longer applies"
        block = block.replace(edit["from"], edit["to"], 1)
    value, end = json.JSONDecoder().raw_decode(head + block, start)
    return value, (head + block).count("\n", 0, end - 1) + 1


def seed_answers(seed_text: str) -> list[int]:
    """The first line of every JSON answer in a seed."""
    lines, found, number = seed_text.splitlines(), [], 1
    while number <= len(lines):
        if lines[number - 1].lstrip().startswith("{"):
            try:
                value, last = seed_block(seed_text, number, [])
            except ValueError:  # code, not JSON: `{"image": image_1},` or `{task_id}`
                number += 1
                continue
            if isinstance(value, dict) and ANSWER_KEYS & value.keys():
                found.append(number)
            number = last + 1
        else:
            number += 1
    return found


def _paths() -> list[Path]:
    return sorted(FIXTURES.glob("*.json"))


def _seed_paths() -> list[Path]:
    return [path for path in _paths() if "seed_file" in load_fixture(path)]


def test_there_are_fixtures_from_every_seed():
    seeds = {load_fixture(path)["seed_file"] for path in _seed_paths()}
    assert len(seeds) == 3


@pytest.mark.parametrize("path", _paths(), ids=[path.stem for path in _paths()])
def test_the_client_parses_the_answer_as_expected(path: Path):
    assert_parses_as_expected(load_fixture(path))


@pytest.mark.parametrize("path", _seed_paths(), ids=[path.stem for path in _seed_paths()])
def test_the_fixture_is_the_seed_text_verbatim(path: Path):
    if not SEEDS.is_dir():
        pytest.skip(NO_SEEDS)
    fixture = load_fixture(path)
    seed_text = (SEEDS / fixture["seed_file"]).read_text(encoding="utf-8")
    edits = fixture.get("text_edits", [])
    assert bool(edits) == bool(fixture["edited"]), "an edit is both described and applied"
    value, last_line = seed_block(seed_text, fixture["first_line"], edits)
    assert fixture["response"] == value
    assert fixture["last_line"] == last_line
    assert fixture["source"] == (
        f"seed {fixture['seed_file'][:3]} lines {fixture['first_line']}-{last_line}"
    )


def test_every_answer_in_the_seeds_has_a_fixture():
    if not SEEDS.is_dir():
        pytest.skip(NO_SEEDS)
    covered = {
        (fixture["seed_file"], fixture["first_line"])
        for fixture in map(load_fixture, _seed_paths())
    }
    answers = {
        (seed.name, line)
        for seed in sorted(SEEDS.glob("*.txt"))
        for line in seed_answers(seed.read_text(encoding="utf-8"))
    }
    assert answers, "no answer found in the seeds: the scan is broken"
    assert sorted(answers - covered) == []


def test_the_client_would_download_every_documented_result_url():
    # The parser finding a URL is half of it: the download refuses hosts it does not know.
    client = DashScopeClient(api_key="sk-fixtures", base_url="https://dashscope.aliyuncs.com")
    try:
        refused = [
            (path.stem, url)
            for path in _seed_paths()
            if (fixture := load_fixture(path))["call"] in ("generate", "fetch")
            for url in parse_result(fixture["response"], synchronous=False).image_urls
            if not client.is_result_url(url)
        ]
    finally:
        client.close()
    assert refused == []
