"""Tasks: `GET /tasks/{id}`, `POST /tasks/{id}/cancel` and `GET /tasks`, and the scheduler.

A task waits in PENDING at least `pending_seconds`, then for one of its model's
`max_running_per_model` running slots (sync calls hold slots too), runs, and ends as its
prompt's triggers say. Its id reads UNKNOWN once `task_ttl_seconds` have passed. Times are
written in the configured zone, as the provider writes them.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from studio.dashscope.emulator.checks import images_requested
from studio.dashscope.emulator.limits import BodyStyle, Endpoint, ModelRules, Option
from studio.dashscope.emulator.outputs import messages_output, usage
from studio.dashscope.emulator.parse import WireError, invalid
from studio.dashscope.emulator.request import Generation
from studio.dashscope.emulator.results import signed_url
from studio.dashscope.emulator.wire import EmResponse, json_answer, request_id, wire_time

if TYPE_CHECKING:
    from studio.dashscope.emulator.core import Emulator

_CANCEL_REFUSED = "Failed to cancel the task, please confirm if the task is in PENDING status."


@dataclass
class Task:
    task_id: str
    request_id: str
    model: str
    spec: ModelRules
    endpoint: Endpoint
    request: Generation
    submitted_at: float
    run_seconds: float
    outcome: str  # SUCCEEDED or FAILED when it ends
    error: tuple[str, str] | None
    outputs: list[str | tuple[str, str]]  # result id, or (code, message) for a failed image
    size: tuple[int, int]
    start_at: float = 0.0
    end_at: float = 0.0
    canceled_at: float | None = None
    scheduled: bool = False

    def status(self, now: float, ttl: float) -> str:
        if now >= self.submitted_at + ttl:
            return "UNKNOWN"
        if self.canceled_at is not None:
            return "CANCELED"
        if not self.scheduled or now < self.start_at:
            return "PENDING"
        if now < self.end_at:
            return "RUNNING"
        return self.outcome


def schedule(em: Emulator, model: str, now: float) -> None:
    """Give each waiting task of a model its start: FIFO over K running slots."""
    tasks = sorted(
        (t for t in em.tasks.values() if t.spec.name == model and t.canceled_at is None),
        key=lambda t: t.submitted_at,
    )
    started = [t for t in tasks if t.scheduled and t.start_at <= now]
    waiting = [t for t in tasks if not (t.scheduled and t.start_at <= now)]
    slots = [t.end_at for t in started if t.end_at > now]
    slots += [end for end in em._sync_calls[model] if end > now]
    slots += [now] * max(0, em.config.max_running_per_model - len(slots))
    heapq.heapify(slots)
    for task in waiting:
        free = heapq.heappop(slots)
        task.start_at = max(task.submitted_at + em.config.pending_seconds, free)
        task.end_at = task.start_at + task.run_seconds
        task.scheduled = True
        heapq.heappush(slots, task.end_at)


# -- fetching a task ------------------------------------------------------------------------


def fetch(em: Emulator, task_id: str) -> EmResponse:
    em.counts["fetches"] += 1
    now = em.clock.now()
    with em._lock:
        task = em.tasks.get(task_id)
        status = task.status(now, em.config.task_ttl_seconds) if task else "UNKNOWN"
    if task is None or status == "UNKNOWN":
        return json_answer(
            200,
            {
                "request_id": request_id(),
                "output": {"task_id": task_id, "task_status": "UNKNOWN"},
            },
        )
    return json_answer(200, task_body(em, task, status, now))


def task_body(em: Emulator, task: Task, status: str, now: float) -> dict[str, object]:
    """A task as `GET /tasks/{id}` answers it in the given status."""
    legacy = task.endpoint.body_style is not BodyStyle.MESSAGES
    output = _task_times(em, task, status, now)
    total = len(task.outputs) or images_requested(task.spec, task.request, asynchronous=True)
    body: dict[str, object] = {"request_id": request_id(), "output": output}
    if status == "RUNNING" and legacy:
        output["task_metrics"] = {"TOTAL": total, "SUCCEEDED": 0, "FAILED": 0}
    if status == "FAILED":
        code, message = task.error or ("InternalError", "Task failed.")
        output["code"], output["message"] = code, message
        if legacy:
            output["task_metrics"] = {"TOTAL": total, "SUCCEEDED": 0, "FAILED": total}
            body["usage"] = {"image_count": 0}
    if status == "SUCCEEDED":
        body["usage"] = _add_results(em, task, output, total, legacy=legacy)
    return body


def _task_times(em: Emulator, task: Task, status: str, now: float) -> dict[str, object]:
    """The output's id, status and the times the task has reached."""
    zone = em.config.utc_offset_minutes
    output: dict[str, object] = {
        "task_id": task.task_id,
        "task_status": status,
        "submit_time": wire_time(task.submitted_at, zone),
    }
    if status != "PENDING" and task.canceled_at is None:
        output["scheduled_time"] = wire_time(task.start_at, zone)
    if status == "CANCELED":
        output["end_time"] = wire_time(task.canceled_at or now, zone)
    elif status in ("SUCCEEDED", "FAILED"):
        output["end_time"] = wire_time(task.end_at, zone)
    return output


def _add_results(
    em: Emulator, task: Task, output: dict[str, object], total: int, *, legacy: bool
) -> dict[str, object]:
    """Put a succeeded task's results into its output; its usage."""
    succeeded = [o for o in task.outputs if isinstance(o, str)]
    urls = [signed_url(em, rid) for rid in succeeded]
    if legacy:
        failed_images = sum(1 for o in task.outputs if isinstance(o, tuple))
        output["results"] = [
            {"code": o[0], "message": o[1]}
            if isinstance(o, tuple)
            else _legacy_result(task, signed_url(em, o))
            for o in task.outputs
        ]
        output["task_metrics"] = {
            "TOTAL": total,
            "SUCCEEDED": total - failed_images,
            "FAILED": failed_images,
        }
    else:
        output.update(messages_output(task.spec, urls, finished=True))
    return usage(task.spec, task.request, task.size, len(urls), task.endpoint)


def _legacy_result(task: Task, url: str) -> dict[str, str]:
    item = {"orig_prompt": task.request.prompt, "url": url}
    extend = task.request.prompt_extend
    if task.spec.takes(Option.PROMPT_EXTEND) and (extend if extend is not None else True):
        item["actual_prompt"] = task.request.prompt
    return item


# -- cancelling a task ----------------------------------------------------------------------


def cancel(em: Emulator, task_id: str) -> EmResponse:
    em.counts["cancels"] += 1
    now = em.clock.now()
    with em._lock:
        task = em.tasks.get(task_id)
        if task is None or task.status(now, em.config.task_ttl_seconds) != "PENDING":
            raise WireError(400, "UnsupportedOperation", _CANCEL_REFUSED)
        task.canceled_at = now
        schedule(em, task.spec.name, now)
    return json_answer(200, {"request_id": request_id()})


# -- listing tasks --------------------------------------------------------------------------


def list_tasks(em: Emulator, query: dict[str, str]) -> EmResponse:
    em.counts["lists"] += 1
    now = em.clock.now()
    start, end = _list_window(query, now, em.config.utc_offset_minutes)
    try:
        page_no = max(1, int(query.get("page_no") or 1))
        page_size = min(100, max(1, int(query.get("page_size") or 10)))
    except ValueError:
        raise invalid("page_no and page_size must be integers.") from None
    rows = _list_rows(em, query, now, start, end)
    total = len(rows)
    page = rows[(page_no - 1) * page_size : page_no * page_size]
    return json_answer(
        200,
        {
            "request_id": request_id(),
            "total": total,
            "total_page": (total + page_size - 1) // page_size,
            "page_no": page_no,
            "page_size": page_size,
            "data": page,
        },
    )


def _list_window(query: dict[str, str], now: float, zone: int) -> tuple[float, float]:
    """The submit times asked for: the last day by default, and never more than a day."""
    start = _list_time(query.get("start_time"), now - 24 * 3600, zone)
    end = _list_time(query.get("end_time"), now, zone)
    if end - start > 24 * 3600:
        raise invalid("The time span between start_time and end_time cannot exceed 24 hours.")
    return start, end


def _list_rows(
    em: Emulator, query: dict[str, str], now: float, start: float, end: float
) -> list[dict[str, object]]:
    """The rows of the tasks the query matches, newest first."""
    with em._lock:
        rows = []
        for task in sorted(em.tasks.values(), key=lambda t: t.submitted_at, reverse=True):
            status = task.status(now, em.config.task_ttl_seconds)
            if status == "UNKNOWN" or not start <= task.submitted_at <= end:
                continue
            if query.get("model_name") and task.model != query["model_name"]:
                continue
            if query.get("status") and status != query["status"]:
                continue
            if query.get("task_id") and task.task_id != query["task_id"]:
                continue
            rows.append(_list_row(task, status))
    return rows


def _list_row(task: Task, status: str) -> dict[str, object]:
    final = status in ("SUCCEEDED", "FAILED", "CANCELED")
    end = (task.canceled_at or task.end_at) if final else None
    return {
        "api_key_id": "emulator",
        "caller_parent_id": "emulator",
        "caller_uid": "emulator",
        "gmt_create": int(task.submitted_at * 1000),
        "start_time": int(task.start_at * 1000) if status not in ("PENDING", "CANCELED") else None,
        "end_time": int(end * 1000) if end else None,
        "model_name": task.model,
        "region": "emulator",
        "request_id": task.request_id,
        "status": status,
        "task_id": task.task_id,
        "user_api_unique_key": f"apikey:v1:aigc:{task.endpoint.value.split('/')[3]}:{task.model}",
    }


def _list_time(value: str | None, default: float, offset_minutes: int = 0) -> float:
    if not value:
        return default
    zone = timezone(timedelta(minutes=offset_minutes))
    try:
        return datetime.strptime(value, "%Y%m%d%H%M%S").replace(tzinfo=zone).timestamp()
    except ValueError:
        raise invalid("start_time and end_time must be written YYYYMMDDhhmmss.") from None
