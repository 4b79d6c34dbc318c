"""ARCHITECTURE.md is a newcomer's map: every module it links to exists, and each question
it answers in one hop ("where is the fair-share rule"...) names a module that holds the
answer."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAP = ROOT / "ARCHITECTURE.md"
LINK = re.compile(r"\]\(([^)#]+)\)")


def linked_paths() -> list[str]:
    return LINK.findall(MAP.read_text())


def defined_names(path: Path) -> set[str]:
    """Classes, functions and methods defined in the module."""
    tree = ast.parse(path.read_text())
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
    }


def test_every_link_on_the_map_leads_to_a_file_or_folder_that_exists():
    paths = linked_paths()
    assert len(paths) > 30
    assert [path for path in paths if not (ROOT / path).exists()] == []


@pytest.mark.parametrize(
    ("question", "module", "name"),
    [
        ("where is the fair-share rule", "studio/generation/worker/admission.py", "FairShare"),
        (
            "where is a result verified before storing",
            "studio/generation/worker/results.py",
            "decode_result",
        ),
        ("where does a quota get charged", "studio/generation/models/charges.py", "settle"),
        ("where does a quota get reserved", "studio/accounts/models/quotas.py", "reserve"),
        (
            "where is the provider's clock estimated",
            "studio/generation/worker/forecast.py",
            "zone_shift",
        ),
    ],
)
def test_each_question_is_one_link_from_the_map_to_the_module_that_answers_it(
    question, module, name
):
    text = MAP.read_text()
    assert f"]({module})" in text, f"{question}: the map does not link {module}"
    assert name in text, f"{question}: the map does not name {name}"
    assert name in defined_names(ROOT / module), f"{question}: {module} defines no {name}"


def test_the_map_is_short_enough_to_read_at_once():
    assert len(MAP.read_text().splitlines()) <= 150
