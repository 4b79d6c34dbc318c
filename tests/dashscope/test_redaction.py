"""No API key and no result-URL signature reaches a log line, whichever logger writes it."""

from __future__ import annotations

import logging

from studio.dashscope.redaction import redact
from studio.dashscope.types import GenerationRequest
from tests.support.emulation import API_KEY, Emulated

SIGNED = (
    "https://dashscope-result-bj.oss-cn-beijing.aliyuncs.com/a.png"
    "?Expires=1790000000&OSSAccessKeyId=LTAI5tAbc&Signature=q%2Bw3e4r5t6y7"
)


def test_redact_scrubs_keys_signatures_and_bearer_tokens():
    text = redact(f"GET {SIGNED} with Authorization: Bearer {API_KEY} and key {API_KEY}")
    assert "q%2Bw3e4r5t6y7" not in text and "LTAI5tAbc" not in text
    assert API_KEY not in text
    assert "Signature=***" in text and "Bearer ***" in text
    assert redact("a desk-lamp and a task-id") == "a desk-lamp and a task-id"


def test_every_logger_is_scrubbed_as_records_are_made(caplog):
    # Even with httpx turned up from its configured WARNING to DEBUG.
    caplog.set_level(logging.DEBUG, logger="httpx")
    logging.getLogger("httpx").info('HTTP Request: GET %s "HTTP/1.1 200 OK"', SIGNED)
    logging.getLogger("some.library").warning("key=%s", API_KEY)
    assert "q%2Bw3e4r5t6y7" not in caplog.text and API_KEY not in caplog.text
    assert "Signature=***" in caplog.text


def test_tracebacks_are_scrubbed_too(caplog):
    try:
        raise RuntimeError(f"could not fetch {SIGNED}")
    except RuntimeError:
        logging.getLogger("studio").exception("download failed")
    assert "q%2Bw3e4r5t6y7" not in caplog.text
    assert "could not fetch" in caplog.text


def test_a_real_run_logs_no_signature(caplog, emulated: Emulated):
    caplog.set_level(logging.DEBUG, logger="httpx")
    result = emulated.client.generate(GenerationRequest(model="qwen-image-max", prompt="a sign"))
    emulated.client.download(result.image_urls[0])
    signature = result.image_urls[0].split("Signature=")[1]
    assert "/results/" in caplog.text  # httpx did log the download
    assert signature not in caplog.text and API_KEY not in caplog.text
