"""What a sync call holds while it runs and what it makes: one of its model's running
slots, and the plan of each image it draws. Sync answers and streams share these."""

from __future__ import annotations

from typing import TYPE_CHECKING

from studio.dashscope.emulator.limits import ModelRules
from studio.dashscope.emulator.render import RenderPlan, cells, sketch
from studio.dashscope.emulator.request import Box, Generation
from studio.dashscope.emulator.tasks import schedule

if TYPE_CHECKING:
    from studio.dashscope.emulator.core import Emulator


def start_sync(em: Emulator, model: str, seconds: float) -> float | None:
    """A sync call takes one of the model's running slots for `seconds`, or is turned
    away: unlike a task, it has no queue to wait in. Returns when the call will end, or
    None."""
    now = em.clock.now()
    with em._lock:
        busy = sum(
            1
            for t in em.tasks.values()
            if t.spec.name == model and t.status(now, em.config.task_ttl_seconds) == "RUNNING"
        ) + sum(1 for end in em._sync_calls[model] if end > now)
        if busy >= em.config.max_running_per_model:
            return None
        end = now + seconds
        em._sync_calls[model].append(end)
        # Tasks waiting for a slot now wait for this call too.
        schedule(em, model, now)
        return end


def end_sync(em: Emulator, model: str, end: float) -> None:
    """Give the slot back, early if the call ended early."""
    with em._lock:
        if end in em._sync_calls[model]:
            em._sync_calls[model].remove(end)
        schedule(em, model, em.clock.now())


def plan_outputs(
    spec: ModelRules, asked: Generation, size: tuple[int, int], count: int
) -> list[RenderPlan]:
    """What each result image will show: the prompt, and the inputs with their regions."""
    width, height = size
    sketches = []
    cell_sizes = cells(len(asked.images), width, height) if asked.images else []
    for position, image in enumerate(asked.images):
        _, _, cell_w, cell_h = cell_sizes[position]
        sketches.append(sketch(image.data, _own_boxes(asked, position), (cell_w, cell_h)))
    return [
        RenderPlan(
            width=width,
            height=height,
            prompt=asked.prompt,
            model=spec.name,
            index=index,
            count=count,
            seed=asked.seed,
            sketches=tuple(sketches),
        )
        for index in range(count)
    ]


def _own_boxes(asked: Generation, position: int) -> tuple[Box, ...]:
    """The regions drawn on one input image: four whole numbers each, as checked."""
    boxes = asked.bbox_list or ()
    if position >= len(boxes):
        return ()
    return tuple(tuple(box) for box in boxes[position])  # type: ignore[arg-type,misc]
