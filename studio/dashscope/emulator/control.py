"""The emulator's own controls under `/_emulator/`: not part of the provider's API.

Tests and demos read counters (`GET stats`) and change the emulator while it runs:
injected faults, the seed reading, the clock, a reset. Changes are JSON POSTs only, so a
web page cannot make them from a browser without asking first.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING

from studio.dashscope.emulator.config import parse_faults
from studio.dashscope.emulator.readings import parse_readings
from studio.dashscope.emulator.wire import EmRequest, EmResponse, error_answer, json_answer

if TYPE_CHECKING:
    from studio.dashscope.emulator.core import Emulator

CONTROL_PREFIX = "/_emulator/"


def control(em: Emulator, request: EmRequest) -> EmResponse:
    """Test and demo controls: counters, faults, clock. Not part of the real API."""
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return error_answer(400, "InvalidParameter", "The request body is not valid JSON.")
    action = request.path.removeprefix(CONTROL_PREFIX)
    if action == "stats" and request.method == "GET":
        return json_answer(200, stats(em))
    if request.method != "POST":
        return error_answer(405, "MethodNotAllowed", "Use POST.")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        # A web page can send a form or text/plain POST to any address, the local
        # emulator's included, without asking first; a JSON one it cannot.
        return error_answer(415, "UnsupportedMediaType", "Send controls as application/json.")
    change = _CHANGES.get(action)
    if change is None:
        return error_answer(404, "NotFound", f"No such control: {action}")
    return change(em, body)


def _set_faults(em: Emulator, body: dict[str, object]) -> EmResponse:
    try:
        rules = parse_faults(str(body.get("faults", "")))
    except ValueError as exc:
        return error_answer(400, "InvalidParameter", str(exc))
    with em._lock:
        em.config.faults = rules
    return json_answer(200, {"faults": [str(rule) for rule in rules]})


def _set_seed_reading(em: Emulator, body: dict[str, object]) -> EmResponse:
    try:
        readings = parse_readings(str(body.get("seed_reading", "")))
    except ValueError as exc:
        return error_answer(400, "InvalidParameter", str(exc))
    with em._lock:
        em.config.seed_reading = readings
    return json_answer(200, {"seed_reading": sorted(readings)})


def _move_clock(em: Emulator, body: dict[str, object]) -> EmResponse:
    em.clock.advance(float(body.get("advance", 0)))  # type: ignore[arg-type]
    return json_answer(200, {"now": em.clock.now()})


def _reset(em: Emulator, body: dict[str, object]) -> EmResponse:
    em.reset()
    return json_answer(200, {"reset": True})


_CHANGES: dict[str, Callable[[Emulator, dict[str, object]], EmResponse]] = {
    "faults": _set_faults,
    "seed-reading": _set_seed_reading,
    "clock": _move_clock,
    "reset": _reset,
}


def stats(em: Emulator) -> dict[str, object]:
    """The counters, the tasks by status, and the faults and reading in force."""
    now = em.clock.now()
    with em._lock:
        by_status: dict[str, int] = defaultdict(int)
        for task in em.tasks.values():
            by_status[task.status(now, em.config.task_ttl_seconds)] += 1
        return {
            "now": now,
            "counts": dict(em.counts),
            "tasks": dict(by_status),
            "faults": [str(rule) for rule in em.config.faults],
            "seed_reading": sorted(em.config.seed_reading),
        }
