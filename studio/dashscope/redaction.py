"""Keeps API keys and signed result URLs out of every log line and every recorded answer.

httpx logs each request's full URL at INFO, and a result URL's `Signature=` is as good as
a password for 24 hours. Rather than trusting every library's logger configuration, the
log record factory scrubs each record as it is made, whichever logger made it.

Answers recorded as test fixtures are scrubbed differently: the URL keeps its shape (every
parameter, `Expires` included, in its place) and only the secret values become REDACTED.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote_plus, urlsplit, urlunsplit

_SECRETS = (
    (re.compile(r"(?i)\b(Signature=)[^&\s'\"<>]+"), r"\1***"),
    (re.compile(r"(?i)\b(OSSAccessKeyId=)[^&\s'\"<>]+"), r"\1***"),
    (re.compile(r"(?i)\b(security-token=)[^&\s'\"<>]+"), r"\1***"),
    (re.compile(r"(?i)\b(x-oss-credential=)[^&\s'\"<>]+"), r"\1***"),
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


PLACEHOLDER = "REDACTED"

# Query parameters of a signed OSS URL (V1 and V4 signatures, STS tokens) whose values let
# anyone holding the URL read the object as the signer. Names compare case-insensitively.
SIGNED_QUERY_NAMES = frozenset(
    {
        "signature",
        "ossaccesskeyid",
        "security-token",
        "x-oss-security-token",
        "x-oss-signature",
        "x-oss-credential",
    }
)
_URL = re.compile(r"https?://[^\s'\"<>\\]+")
_API_KEY = re.compile(r"\bsk-[A-Za-z0-9][A-Za-z0-9_\-]{3,}")


class RecordRedactor:
    """Scrubs a recorded answer before it is written down, and remembers what it replaced.

    Every API key given, anything shaped like one, and the secret query values of every URL
    in every string become REDACTED; the rest stays byte for byte, so the answer still
    parses as the provider sent it.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = tuple(secret for secret in secrets if secret)
        self.replaced: set[str] = set()

    def value(self, value: Any) -> Any:
        """A JSON value with every string in it scrubbed; keys are the protocol's own."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.value(item) for item in value]
        if isinstance(value, dict):
            return {key: self.value(item) for key, item in value.items()}
        return value

    def text(self, text: str) -> str:
        text = _URL.sub(lambda match: self.url(match.group(0)), text)
        for secret in self.secrets:
            if secret in text:
                self.replaced.add("API key")
                text = text.replace(secret, PLACEHOLDER)
        text, count = _API_KEY.subn(PLACEHOLDER, text)
        if count:
            self.replaced.add("API key")
        return text

    def url(self, url: str) -> str:
        parts = urlsplit(url)
        if not parts.query:
            return url
        pairs = []
        for pair in parts.query.split("&"):
            name, sep, value = pair.partition("=")
            if sep and value != PLACEHOLDER and unquote_plus(name).lower() in SIGNED_QUERY_NAMES:
                self.replaced.add(unquote_plus(name))
                pair = f"{name}={PLACEHOLDER}"
            pairs.append(pair)
        return urlunsplit(parts._replace(query="&".join(pairs)))


def redact_signed_url(url: str) -> str:
    """The URL with the values of its signing parameters replaced by REDACTED."""
    return RecordRedactor().url(url)


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
