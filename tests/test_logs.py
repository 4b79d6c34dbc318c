"""Structured logs: the job id on every line the worker writes while it acts on a job."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

from studio.dashscope.emulator.config import FaultRule
from studio.generation.models import Job
from studio.generation.worker.steps import run_step
from studio.logs import JsonFormatter, LogContextFilter, log_context
from tests.support.emulation import API_KEY, ROOT

T2I = {"model": "wan2.6-t2i", "prompt": "A lighthouse", "parameters": {"size": "1280*1280"}}
SYNC = {
    "model": "qwen-image-2.0-pro",
    "prompt": "A poster that says Hello",
    "parameters": {"size": "1024*1024", "n": 1},
}
UNREDACTED_SIGNATURE = re.compile(r"Signature=(?!\*\*\*)[^\s&\"]")


class Captured:
    def __init__(self) -> None:
        self.stream = io.StringIO()

    def lines(self) -> list[dict]:
        text = self.stream.getvalue()
        return [json.loads(line) for line in text.splitlines()]  # each line is one object

    def clear(self) -> None:
        self.stream.seek(0)
        self.stream.truncate()


@pytest.fixture
def json_log() -> Iterator[Captured]:
    """The console handler as STUDIO_LOG_FORMAT=json configures it, on a buffer, with
    httpx at INFO: its request lines are the library lines, signed URLs and all."""
    captured = Captured()
    handler = logging.StreamHandler(captured.stream)
    handler.addFilter(LogContextFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("httpx", "studio")}
    root.addHandler(handler)
    logging.getLogger("httpx").setLevel(logging.INFO)
    logging.getLogger("studio").setLevel(logging.DEBUG)
    yield captured
    root.removeHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def test_every_line_of_a_job_step_carries_its_job_id(pipeline, member, json_log):
    # A sync model: its step makes the provider call and downloads, all in the step.
    job = pipeline.submit(member, **SYNC)
    # Made a moment later: on the fake clock two jobs would otherwise tie for first in line.
    pipeline.clock.advance(0.001)
    other = pipeline.submit(member, **SYNC)
    step = pipeline.until_handed_over(job)
    assert step == str(job.pk)
    # The first download answers 503: the client says so and tries again.
    pipeline.emulator.config.faults = [FaultRule.parse("result:503")]
    json_log.clear()

    run_step(step, pipeline.client, limits=pipeline.limits, now=pipeline.now)

    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    lines = json_log.lines()
    assert {line["logger"] for line in lines} == {"httpx", "studio.dashscope.client"}
    assert any("failed with DownloadFailed; try 2" in line["message"] for line in lines)
    assert any("/results/" in line["message"] for line in lines)  # the download
    for line in lines:
        assert line["job_id"] == str(job.pk), line
        assert line["model"] == "qwen-image-2.0-pro", line
        assert line["worker"], line
        assert set(line) >= {"time", "level", "logger", "message"}
    assert str(other.pk) not in json_log.stream.getvalue()
    # The download URL is signed; its signature never reaches the log.
    assert "Signature=***" in json_log.stream.getvalue()
    assert not UNREDACTED_SIGNATURE.search(json_log.stream.getvalue())


def test_the_dispatchers_requests_carry_the_job_they_are_for(pipeline, member, json_log):
    jobs = [pipeline.submit(member, **T2I) for _ in range(2)]

    pipeline.drive()

    task_of = {
        str(job.pk): job.provider_task_id for job in Job.objects.filter(pk__in=[j.pk for j in jobs])
    }
    requests = [line for line in json_log.lines() if line["logger"] == "httpx"]
    submits = [line for line in requests if "POST" in line["message"]]
    polls = [line for line in requests if "/tasks/" in line["message"]]
    assert len(submits) == 2 and polls
    assert {line["job_id"] for line in submits} == set(task_of)
    for line in polls:
        assert task_of[line["job_id"]] in line["message"], line
        assert line["model"] == "wan2.6-t2i"


def test_a_json_line_keeps_keys_and_signatures_out(json_log):
    url = "https://dashscope-result.example/x.png?Expires=1&Signature=c2VjcmV0"
    with log_context(job_id="j-1"):
        logging.getLogger("httpx").warning("Retrying with Authorization: Bearer %s", API_KEY)
        try:
            raise RuntimeError(f"download of {url} with {API_KEY} failed")
        except RuntimeError:
            logging.getLogger("studio.generation.worker").exception("The step failed")

    text = json_log.stream.getvalue()
    warning, failure = json_log.lines()
    assert warning["job_id"] == failure["job_id"] == "j-1"
    assert warning["message"] == "Retrying with Authorization: Bearer ***"
    assert "RuntimeError: download of" in failure["exception"]
    assert "Signature=***" in failure["exception"]
    assert API_KEY not in text and "sk-test" not in text
    assert not UNREDACTED_SIGNATURE.search(text)


def test_lines_outside_a_job_have_no_job_id(json_log):
    with log_context(job_id="j-2", worker="host:1"):
        pass
    logging.getLogger("studio").warning("Between jobs")

    (line,) = json_log.lines()
    assert "job_id" not in line and "worker" not in line


def test_a_nested_context_adds_to_the_outer_one_and_ends_with_it(json_log):
    with log_context(job_id="j-3", worker="host:2"):
        with log_context(model="wan2.6-t2i", task_id=""):
            logging.getLogger("studio").warning("inner")
        logging.getLogger("studio").warning("outer")

    inner, outer = json_log.lines()
    assert inner["job_id"] == "j-3" and inner["model"] == "wan2.6-t2i" and "task_id" not in inner
    assert outer["job_id"] == "j-3" and "model" not in outer


def run_with_log_format(value: str) -> subprocess.CompletedProcess[str]:
    code = (
        "import django, logging; django.setup(); "
        "from studio.logs import log_context\n"
        "with log_context(job_id='j-4'):\n"
        "    logging.getLogger('studio.generation.worker').warning('Storing image 1')\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "studio.settings",
            "STUDIO_LOG_FORMAT": value,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_studio_log_format_json_writes_one_object_per_line():
    result = run_with_log_format("json")

    assert result.returncode == 0, result.stderr
    (line,) = [json.loads(text) for text in result.stderr.splitlines()]
    assert line["message"] == "Storing image 1"
    assert line["job_id"] == "j-4"
    assert line["level"] == "WARNING" and line["logger"] == "studio.generation.worker"


def test_the_plain_format_names_the_job():
    result = run_with_log_format("plain")

    assert result.returncode == 0, result.stderr
    assert "WARNING studio.generation.worker job=j-4: Storing image 1" in result.stderr


def test_an_unknown_log_format_is_refused():
    result = run_with_log_format("xml")

    assert result.returncode != 0
    assert "STUDIO_LOG_FORMAT must be plain or json" in result.stderr


@pytest.mark.parametrize(
    ("text", "found"),
    [
        (b"Bearer sk-0123456789abcdef\n", "API key"),
        (b"a stray \x00 byte\nBearer sk-0123456789abcdef\n", "API key"),  # not skipped as binary
        (b"GET /r.png?x-oss-signature=deadbeefcafe\n", "URL signature"),
        (b"GET /r.png?Signature=abc123&Expires=1\n", "URL signature"),
        (b"GET /r.png?Signature=***&Expires=1 for task-1234567\n", None),
    ],
)
def test_the_log_check_of_make_test_finds_what_was_not_redacted(tmp_path, text, found):
    log = tmp_path / "test.log"
    log.write_bytes(text)
    run = subprocess.run(
        ["bash", str(ROOT / "scripts" / "check-log-secrets.sh"), str(log)],
        capture_output=True,
        text=True,
    )
    if found is None:
        assert run.returncode == 0, run.stderr
    else:
        assert run.returncode == 1 and f"unredacted {found}" in run.stderr
        assert "deadbeef" not in run.stderr + run.stdout and "0123456789" not in run.stderr
