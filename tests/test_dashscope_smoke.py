"""The real-service smoke check: refuses without a key, and agrees with itself on the emulator."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from studio.dashscope.smoke import Check, shape
from tests.emulation import API_KEY, ServedEmulator


def test_it_refuses_without_a_key_and_sends_nothing(settings, served_emulator: ServedEmulator):
    settings.DASHSCOPE_API_KEY = ""
    settings.DASHSCOPE_BASE_URL = served_emulator.base_url
    before = served_emulator.control("stats")["counts"]
    with pytest.raises(CommandError, match="DASHSCOPE_API_KEY is not set"):
        call_command("dashscope_smoke", "--yes")
    assert served_emulator.control("stats")["counts"] == before


def test_it_says_what_it_will_cost_and_stops_unless_confirmed(
    settings, capsys, served_emulator: ServedEmulator
):
    settings.DASHSCOPE_API_KEY = API_KEY
    settings.DASHSCOPE_BASE_URL = served_emulator.base_url
    before = served_emulator.control("stats")["counts"].get("submitted", 0)
    with pytest.raises(CommandError, match="Not confirmed"):
        call_command("dashscope_smoke")
    assert "generates up to 5 images" in capsys.readouterr().out
    assert served_emulator.control("stats")["counts"].get("submitted", 0) == before


def test_against_the_emulator_every_shape_matches(
    settings, capsys, served_emulator: ServedEmulator
):
    settings.DASHSCOPE_API_KEY = API_KEY
    settings.DASHSCOPE_BASE_URL = served_emulator.base_url
    call_command("dashscope_smoke", "--yes", "--poll-interval", "0.2", "--timeout", "30")
    out = capsys.readouterr().out
    assert "The real service answers as assumed." in out
    for name in (
        "sync generation",
        "async edit with regions",
        "legacy prompt",
        "task list",
        "invalid API key",
    ):
        assert name in out
    assert "DIFF" not in out
    assert "result is PNG 512x512" in out


def test_shapes_name_every_key_path_and_type():
    real = {"output": {"task_id": "x", "choices": [{"message": {"content": [{"image": "u"}]}}]}}
    emulated = {
        "output": {
            "task_id": "x",
            "finished": True,
            "choices": [{"message": {"content": [{"image": "u"}]}}],
        }
    }
    assert "output.choices[].message.content[].image:string" in shape(real)
    assert shape(emulated) - shape(real) == {"output.finished:bool"}


def test_a_field_only_the_emulator_sends_or_a_changed_type_is_a_difference():
    real = {"output": {"task_id": "x", "start": None}}
    emulated = {"output": {"task_id": "x", "start": 5, "finished": True}}
    check = Check("fetch")
    check.compare(real, emulated)
    assert check.missing_in_real == ["output.finished:bool"] and not check.ok
    retyped = Check("fetch")
    retyped.compare({"usage": {"image_count": "1"}}, {"usage": {"image_count": 1}})
    assert retyped.problems and not retyped.ok
    nullable = Check("list")
    nullable.compare({"end_time": None}, {"end_time": 17})
    assert nullable.ok
