"""Log lines that say which job they are about, as plain text or as one JSON object each.

The worker acts on many jobs at once, in threads and processes. Rather than passing a job
id to every log call (which library code could never do), the worker sets a context
variable while it acts on a job, and a filter on the log handler copies it onto every
record that handler receives, whichever logger made it: httpx's warnings and django-q's
own lines inside a task carry the job id too.

Loaded by `LOGGING` in the settings, so nothing here may import models.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from studio.dashscope.redaction import redact

# The fields a record may carry from the context, in the order a JSON line shows them.
CONTEXT_FIELDS = ("job_id", "task_id", "model", "worker")

_EMPTY: Mapping[str, str] = MappingProxyType({})
_context: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "log_context", default=_EMPTY
)


@contextlib.contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Within the block, every log line of this thread (or task) carries `fields`.

    Fields given as None or "" are left out; an inner block adds to an outer one.
    """
    values = {name: str(value) for name, value in fields.items() if value not in (None, "")}
    token = _context.set(MappingProxyType({**_context.get(), **values}))
    try:
        yield
    finally:
        _context.reset(token)


class LogContextFilter(logging.Filter):
    """Copies the log context onto each record; `job_label` is " job=<id>" or ""."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _context.get()
        for name in CONTEXT_FIELDS:
            if name in context:
                setattr(record, name, context[name])
        job_id = getattr(record, "job_id", None)
        record.job_label = f" job={job_id}" if job_id else ""
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the context, the exception.

    Every text field is scrubbed again here: the record factory in studio.dashscope.redaction
    already cleans messages and tracebacks, and a stack or a field added by a filter gets
    the same treatment.
    """

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value:
                line[name] = str(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(
            {
                key: redact(value) if isinstance(value, str) else value
                for key, value in line.items()
            },
            ensure_ascii=False,
        )
