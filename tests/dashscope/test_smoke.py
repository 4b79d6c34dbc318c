"""The real-service smoke check: refuses without a key, agrees with itself on the emulator,
and records real answers as redacted fixtures."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import httpx
import pytest
from django.core.management import CommandError, call_command

from studio.core.management.commands import dashscope_smoke
from studio.dashscope.emulator import Emulator, EmulatorConfig, EmulatorTransport, FakeClock
from studio.dashscope.smoke import Check, Recorder, SmokeTest, shape
from tests.support.emulation import API_KEY, BASE_URL, ServedEmulator
from tests.support.provider_fixtures import assert_parses_as_expected, load_fixture


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
    settings.DASHSCOPE_EMULATED = True
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


# -- --record: real answers become fixtures ---------------------------------------------------

SECRET_VALUES = re.compile(
    r"(?i)(?:Signature|OSSAccessKeyId|Security-Token|x-oss-security-token|x-oss-signature"
    r"|x-oss-credential)=(?!REDACTED\b)"
)


def _roomy_config() -> EmulatorConfig:
    """Tasks wait a second, then run two; no rate limit gets in the way."""
    return EmulatorConfig(
        pending_seconds=1.0,
        running_seconds=2.0,
        submits_per_second=1000,
        queries_per_second=1000,
        max_running_per_model=100,
    )


def _recorded(directory: Path) -> list[dict]:
    return [load_fixture(path) for path in sorted(directory.glob("*.json"))]


def _assert_clean(directory: Path) -> None:
    for path in directory.glob("*.json"):
        text = path.read_text(encoding="utf-8")
        assert API_KEY not in text, path.name
        assert "LTAI5tEmulatorKey" not in text, path.name  # the emulator's OSSAccessKeyId
        assert not SECRET_VALUES.search(text), path.name


def test_record_saves_every_real_answer_redacted_and_parsable(tmp_path: Path):
    # The in-process emulator plays the real service, on a clock that moves only when the
    # smoke test sleeps between polls.
    clock = FakeClock()
    recorder = Recorder(tmp_path, base_url=BASE_URL, secrets=(API_KEY,))
    smoke = SmokeTest(
        api_key=API_KEY,
        base_url=BASE_URL,
        transport=EmulatorTransport(Emulator(_roomy_config(), clock=clock)),
        poll_interval=0.5,
        sleep=clock.sleep,
        recorder=recorder,
    )
    try:
        checks = list(smoke.run())
    finally:
        smoke.close()
    assert all(check.ok for check in checks), [c for c in checks if not c.ok]

    fixtures = _recorded(tmp_path)
    assert len(fixtures) == len(recorder.written)
    assert {f["call"] for f in fixtures} == {
        "generate",
        "submit",
        "fetch",
        "cancel",
        "list",
        "error",
    }
    for fixture in fixtures:
        assert fixture["source"].startswith("recorded ")
        assert fixture["source"].endswith(" from dashscope.emulator")
        assert_parses_as_expected(fixture)
    # Polled until done, each status once per task; an unknown id reads UNKNOWN.
    fetched = [f["expect"]["status"] for f in fixtures if f["call"] == "fetch"]
    assert {"PENDING", "RUNNING", "SUCCEEDED", "UNKNOWN"} <= set(fetched)
    paths = [f["request"]["path"] for f in fixtures if f["call"] == "fetch"]
    statuses = list(zip(paths, fetched, strict=True))
    assert len(statuses) == len(set(statuses))
    errors = {f["expect"]["code"] for f in fixtures if f["call"] == "error"}
    assert {"InvalidParameter", "InvalidApiKey"} <= errors

    _assert_clean(tmp_path)
    results = [
        f for f in fixtures if f["call"] in ("generate", "fetch") and f["expect"]["image_url_count"]
    ]
    assert results
    for fixture in results:
        assert "Signature=REDACTED" in json.dumps(fixture["response"])
        assert "Expires=" in json.dumps(fixture["response"])  # kept: it says when it lapses
        assert "Signature" in fixture["edited"] and "OSSAccessKeyId" in fixture["edited"]


def test_a_key_or_a_signed_url_in_any_answer_is_redacted(tmp_path: Path):
    signed = (
        "https://dashscope-7c2c.oss-accelerate.aliyuncs.com/1d/a.png?Expires=1775751200"
        "&OSSAccessKeyId=LTAI5tAbc&Signature=q%2Bw3e4&security-token=CAIS%2Bx"
        "&x-oss-security-token=CAIS2&x-oss-signature-version=OSS4-HMAC-SHA256"
        "&x-oss-credential=LTAI5tAbc%2F20260401%2Fcn-beijing%2Foss%2Faliyun_v4_request"
        "&x-oss-signature=9f8e7d"
    )
    body = {
        "request_id": "r-1",
        "code": "InvalidApiKey",
        "message": f"Invalid API-key provided: {API_KEY} (see {signed})",
    }
    request = httpx.Request(
        "POST",
        f"{BASE_URL}/services/aigc/multimodal-generation/generation",
        headers={"Authorization": f"Bearer {API_KEY}"},
        json={"model": "qwen-image-2.0", "input": {}},
    )
    recorder = Recorder(tmp_path, base_url=BASE_URL, secrets=(API_KEY,))
    path = recorder.record(httpx.Response(401, json=body, request=request))
    assert path is not None and path.name.endswith("-error-qwen-image-2.0-invalidapikey.json")
    _assert_clean(tmp_path)
    fixture = load_fixture(path)
    message = fixture["response"]["message"]
    assert "LTAI5tAbc" not in message and "q%2Bw3e4" not in message and "9f8e7d" not in message
    assert "Expires=1775751200" in message and "x-oss-signature-version=OSS4-HMAC-SHA256" in message
    assert fixture["edited"].startswith("redacted: ") and "API key" in fixture["edited"]
    assert fixture["request"] == {
        "method": "POST",
        "path": "/api/v1/services/aigc/multimodal-generation/generation",
        "model": "qwen-image-2.0",
    }
    assert_parses_as_expected(fixture)


def test_the_command_records_into_a_folder(settings, capsys, monkeypatch, tmp_path: Path):
    # The command as run, with the in-process emulator playing the real service.
    settings.DASHSCOPE_API_KEY = API_KEY
    settings.DASHSCOPE_BASE_URL = BASE_URL
    clock = FakeClock()
    emulator = Emulator(_roomy_config(), clock=clock)
    in_process = functools.partial(
        SmokeTest, transport=EmulatorTransport(emulator), sleep=clock.sleep
    )
    monkeypatch.setattr(dashscope_smoke, "SmokeTest", in_process)
    folder = tmp_path / "provider"
    call_command("dashscope_smoke", "--yes", "--poll-interval", "0.5", "--record", str(folder))
    written = sorted(folder.glob("recorded-*.json"))
    assert f"Recorded {len(written)} answers in {folder}" in capsys.readouterr().out
    assert len(written) >= 10
    _assert_clean(folder)
    for fixture in _recorded(folder):
        assert_parses_as_expected(fixture)


def test_the_command_refuses_a_folder_it_cannot_make_before_sending(settings, tmp_path: Path):
    settings.DASHSCOPE_API_KEY = API_KEY
    settings.DASHSCOPE_BASE_URL = BASE_URL  # nothing listens there: a sent call would fail
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(CommandError, match=r"Cannot record in .*nothing was sent"):
        call_command("dashscope_smoke", "--yes", "--record", str(blocker / "provider"))
