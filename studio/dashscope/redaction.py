"""Keeps API keys and signed result URLs out of every log line.

httpx logs each request's full URL at INFO, and a result URL's `Signature=` is as good as
a password for 24 hours. Rather than trusting every library's logger configuration, the
log record factory scrubs each record as it is made, whichever logger made it.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

_SECRETS = (
    (re.compile(r"(?i)\b(Signature=)[^&\s'\"<>]+"), r"\1***"),
    (re.compile(r"(?i)\b(OSSAccessKeyId=)[^&\s'\"<>]+"), r"\1***"),
    (re.compile(r"(?i)\b(security-token=)[^&\s'\"<>]+"), r"\1***"),
    (re.compile(r"(?i)\b(Bearer\s+)[^\s'\"<>]+"), r"\1***"),
    (re.compile(r"\bsk-[A-Za-z0-9][A-Za-z0-9_\-]{3,}"), "sk-***"),
)


def redact(text: str) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


def url_for_log(url: str) -> str:
    """A URL without its query string: enough to tell which object, nothing to reuse."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def install_log_redaction() -> None:
    previous = logging.getLogRecordFactory()
    if getattr(previous, "redacts_secrets", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the logging module's business
            return record
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[0] is not None:
            # Format the traceback now so that handlers reuse the scrubbed text.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return record

    factory.redacts_secrets = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
