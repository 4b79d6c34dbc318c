"""Request bodies and response parsing of the DashScope wire protocol (client side).

Bodies follow the documented shape exactly (strict on output); parsing accepts every shape
the documents show for a result, and ignores fields it does not know (lenient on input).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from studio.dashscope.catalog import BodyStyle, Endpoint
from studio.dashscope.types import (
    INTERLEAVE_PARAMETERS,
    PLAIN_PARAMETERS,
    GenerationRequest,
    ImageFailure,
    SubmittedTask,
    TaskPage,
    TaskResult,
    TaskStatus,
    TaskSummary,
    Usage,
)


def build_body(request: GenerationRequest, endpoint: Endpoint) -> dict[str, Any]:
    parameters: dict[str, Any] = {
        key: getattr(request, key) for key in PLAIN_PARAMETERS if getattr(request, key) is not None
    }
    if request.bbox_list is not None:
        parameters["bbox_list"] = [[list(box) for box in boxes] for boxes in request.bbox_list]
    if request.color_palette is not None:
        parameters["color_palette"] = [swatch.as_wire() for swatch in request.color_palette]
    if request.enable_interleave:
        parameters.update(
            {
                key: getattr(request, key)
                for key in INTERLEAVE_PARAMETERS
                if getattr(request, key) is not None
            }
        )
        # The documents ask for both this and the SSE header; the SDK sends the header only.
        parameters["stream"] = True
    images = [image.wire_value() for image in request.images]
    style = endpoint.body_style
    if style is BodyStyle.MESSAGES:
        content: list[dict[str, str]] = [{"text": request.prompt}]
        content += [{"image": value} for value in images]
        body_input: dict[str, Any] = {"messages": [{"role": "user", "content": content}]}
        if request.negative_prompt:
            parameters["negative_prompt"] = request.negative_prompt
    else:
        # The legacy protocol keeps negative_prompt inside `input`.
        body_input = {"prompt": request.prompt}
        if request.negative_prompt:
            body_input["negative_prompt"] = request.negative_prompt
        if style is BodyStyle.PROMPT_IMAGES:
            body_input["images"] = images
    return {"model": request.model, "input": body_input, "parameters": parameters}


def parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    for fmt in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(value, fmt)
        except ValueError:
            continue
    return None


def _status(value: object, default: TaskStatus) -> TaskStatus:
    try:
        return TaskStatus(str(value))
    except ValueError:
        return default


def _choice_images(output: dict[str, Any]) -> list[str]:
    urls = []
    for choice in output.get("choices") or []:
        message = choice.get("message") if isinstance(choice, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        for item in content or []:
            is_image = isinstance(item, dict) and isinstance(item.get("image"), str)
            if is_image and item.get("type", "image") == "image":
                urls.append(item["image"])
    return urls


def _legacy_results(output: dict[str, Any]) -> tuple[list[str], list[ImageFailure]]:
    urls, failures = [], []
    for index, item in enumerate(output.get("results") or []):
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("url"), str):
            urls.append(item["url"])
        else:
            failures.append(
                ImageFailure(
                    index=index,
                    code=str(item.get("code") or "Unknown"),
                    message=str(item.get("message") or ""),
                )
            )
    return urls, failures


def parse_result(body: dict[str, Any], *, synchronous: bool) -> TaskResult:
    """A sync generation answer (E1) or a task fetch answer (E5)."""
    output = body.get("output") if isinstance(body.get("output"), dict) else {}
    assert isinstance(output, dict)
    default = TaskStatus.SUCCEEDED if synchronous else TaskStatus.UNKNOWN
    status = _status(output.get("task_status"), default)
    urls = _choice_images(output)
    legacy_urls, failures = _legacy_results(output)
    return TaskResult(
        status=status,
        request_id=str(body.get("request_id") or ""),
        task_id=output.get("task_id"),
        image_urls=tuple(urls + legacy_urls),
        failures=tuple(failures),
        usage=Usage.from_wire(body.get("usage")),
        code=output.get("code") or None,
        message=output.get("message") or None,
        submit_time=parse_time(output.get("submit_time")),
        scheduled_time=parse_time(output.get("scheduled_time")),
        end_time=parse_time(output.get("end_time")),
        raw=body,
    )


def parse_submitted(body: dict[str, Any]) -> SubmittedTask | None:
    output = body.get("output") if isinstance(body.get("output"), dict) else body
    assert isinstance(output, dict)
    task_id = output.get("task_id")
    if not isinstance(task_id, str) or not task_id:
        return None
    return SubmittedTask(
        task_id=task_id,
        status=_status(output.get("task_status"), TaskStatus.PENDING),
        request_id=str(body.get("request_id") or ""),
    )


def parse_task_page(body: dict[str, Any]) -> TaskPage:
    tasks = []
    for item in body.get("data") or []:
        if not isinstance(item, dict) or not isinstance(item.get("task_id"), str):
            continue
        created = item.get("gmt_create")
        tasks.append(
            TaskSummary(
                task_id=item["task_id"],
                status=_status(item.get("status") or item.get("task_status"), TaskStatus.UNKNOWN),
                model=item.get("model_name"),
                request_id=item.get("request_id"),
                created_at_ms=created if isinstance(created, int) else None,
            )
        )
    return TaskPage(
        tasks=tuple(tasks),
        total=int(body.get("total") or 0),
        page_no=int(body.get("page_no") or 1),
        page_size=int(body.get("page_size") or len(tasks)),
        total_pages=int(body.get("total_page") or 0),
        request_id=str(body.get("request_id") or ""),
    )
