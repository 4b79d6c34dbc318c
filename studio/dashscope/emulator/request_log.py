"""The emulator's request log: one entry per request, kept in memory and written as JSON lines.

An entry says what came in and what went out, with nothing secret in it: the API key only
as missing, valid or invalid, a result URL's signature masked, and every inline image as
its format, size and hash.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING

from studio.dashscope.emulator.parse import UnreadableImage, read_image
from studio.dashscope.emulator.wire import EmRequest, EmResponse, wire_time
from studio.dashscope.redaction import url_for_log

if TYPE_CHECKING:
    from studio.dashscope.emulator.core import Emulator


def log(em: Emulator, request: EmRequest, response: EmResponse | None, note: str | None) -> None:
    entry = _entry(em, request, response)
    if request.body and request.method == "POST" and not request.path.startswith("/_"):
        entry["body"] = summarize_body(request.body)
    entry.update(_answer_code(response))
    if note:
        entry["note"] = note
    with em._lock:
        em.requests.append(entry)
    if em.config.log_path:
        line = json.dumps(entry, ensure_ascii=False)
        with em._lock, open(em.config.log_path, "a", encoding="utf-8") as log_file:
            log_file.write(line + "\n")


def _entry(em: Emulator, request: EmRequest, response: EmResponse | None) -> dict[str, object]:
    return {
        "time": wire_time(em.clock.now()),
        "method": request.method,
        "path": request.path,
        "query": {
            k: ("***" if k in ("Signature", "OSSAccessKeyId") else v)
            for k, v in request.query.items()
        },
        "auth": _auth_kind(request.headers.get("authorization", ""), em.config.api_key_prefix),
        "headers": {
            k: v
            for k, v in request.headers.items()
            if k.startswith("x-dashscope") or k == "content-type"
        },
        "status": response.status if response else None,
    }


def _answer_code(response: EmResponse | None) -> dict[str, object]:
    """The error code of a JSON answer, if it has one, as the entry's `code`."""
    if response is None or response.content_type != "application/json":
        return {}
    try:
        answer = json.loads(response.body)
    except ValueError:
        return {}
    if isinstance(answer, dict) and "code" in answer:
        return {"code": answer["code"]}
    return {}


def _auth_kind(header: str, prefix: str) -> str:
    if not header:
        return "missing"
    scheme, _, key = header.partition(" ")
    return "valid" if scheme.lower() == "bearer" and key.startswith(prefix) else "invalid"


def summarize_body(raw: bytes) -> object:
    """The request body with every inline image replaced by its size and hash."""
    try:
        body = json.loads(raw)
    except ValueError:
        return {"unparsed_bytes": len(raw)}
    return _summarize(body)


def _summarize(value: object) -> object:
    if isinstance(value, dict):
        return {k: _summarize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_summarize(v) for v in value]
    if isinstance(value, str) and value.startswith("data:"):
        return _inline_image(value)
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        return url_for_log(value)
    return value


def _inline_image(value: str) -> dict[str, object]:
    try:
        data = base64.b64decode(value.partition(",")[2], validate=True)
        info = read_image(data)
    except (ValueError, UnreadableImage):
        return {"inline_image": "unreadable", "chars": len(value)}
    return {
        "inline_image": info.format,
        "width": info.width,
        "height": info.height,
        "bytes": info.bytes,
        "sha256": info.sha256,
    }
