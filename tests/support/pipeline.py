"""A whole pipeline in one process: jobs, the dispatcher, job steps and the emulator.

Time is the emulator's fake clock, shared with the dispatcher, so a two-minute timeout
takes no time at all. Job steps the dispatcher hands out run inline, in order.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from django.db import connection
from PIL import Image

from studio.accounts.models import Membership, QuotaCounter
from studio.dashscope.emulator import EmulatorConfig
from studio.dashscope.emulator.config import FaultRule
from studio.generation.models import Job
from studio.generation.normalise import NormalisedImage, normalise
from studio.generation.services import InputUpload, create_job
from studio.generation.worker.dispatcher import Dispatcher
from studio.generation.worker.limits import Limits
from studio.generation.worker.steps import run_step
from tests.support.emulation import Emulated, make_image
from tests.support.factories import create_membership, create_team, create_user

# A sync-only model: a job step calls the provider.
SYNC = {
    "model": "qwen-image-2.0-pro",
    "prompt": "A poster that says Hello",
    "parameters": {"size": "1024*1024", "n": 1},
}


def inject(world: Emulated, *specs: str) -> None:
    """The emulator's faults from now on, as `submit:429x1`, `list:500`..."""
    world.emulator.config.faults = [FaultRule.parse(spec) for spec in specs]


class Pipeline(Emulated):
    def __init__(self, config: EmulatorConfig, limits: Limits) -> None:
        super().__init__(config)
        self.limits = limits
        self.steps: list[str] = []
        self.dispatcher = Dispatcher(
            self.client, limits=limits, now=self.now, enqueue_step=self.enqueue
        )

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.now(), UTC)

    def enqueue(self, job: Job) -> None:
        self.steps.append(str(job.pk))

    def run_steps(self) -> None:
        while self.steps:
            run_step(self.steps.pop(0), self.client, limits=self.limits, now=self.now)

    def tick(self, seconds: float = 0.5) -> None:
        self.dispatcher.step()
        self.run_steps()
        self.clock.advance(seconds)

    def drive(
        self, until: Callable[[], bool] | None = None, *, seconds: float = 300, tick: float = 0.5
    ) -> None:
        """Run dispatcher passes until every job is finished (or `until` holds)."""
        until = until or (lambda: not Job.objects.filter(status__in=Job.OPEN).exists())
        end = self.clock.now() + seconds
        while not until():
            assert self.clock.now() < end, "the pipeline did not finish in time"
            self.tick(tick)

    def until_handed_over(self, job: Job, *, seconds: float = 60) -> str:
        """Dispatcher passes only, until the job's step is handed out; that step's id."""
        end = self.clock.now() + seconds
        while not self.steps:
            assert self.clock.now() < end, "no step was handed out"
            self.dispatcher.step()
            self.clock.advance(0.5)
        return self.steps.pop(0)

    def submit(self, membership: Membership, **kwargs) -> Job:
        return create_job(membership=membership, now=self.now(), **kwargs)

    def close(self) -> None:
        self.dispatcher.close()
        self.client.close()


def pipeline_config(**overrides) -> EmulatorConfig:
    values = {
        "pending_seconds": 1.0,
        "running_seconds": 3.0,
        "max_running_per_model": 2,
        "submits_per_second": 2,
        "queries_per_second": 20,
    }
    return EmulatorConfig(**(values | overrides))


def make_pipeline(**limits) -> Pipeline:
    """A pipeline whose studio limits and emulator limits are the same numbers."""
    values = {
        "running_per_model": 2,
        "submits_per_second": 2,
        "queries_per_second": 20,
        "timeout_seconds": 120,
        "queue_ahead": 0,
    } | limits
    config = pipeline_config(
        max_running_per_model=values["running_per_model"],
        submits_per_second=values["submits_per_second"],
        queries_per_second=values["queries_per_second"],
    )
    return Pipeline(config, Limits(**values))


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def pipeline(db, media) -> Iterator[Pipeline]:
    world = make_pipeline()
    yield world
    world.close()


@pytest.fixture
def pipeline_with(db, media) -> Iterator[Callable[..., Pipeline]]:
    """Pipelines with limits of their own: `pipeline_with(busy_give_up_seconds=60)`."""
    made: list[Pipeline] = []

    def make(**limits) -> Pipeline:
        made.append(make_pipeline(**limits))
        return made[-1]

    yield make
    for world in made:
        world.close()


@pytest.fixture
def member(db) -> Membership:
    team = create_team(name="Pixel Works", slug="pixel")
    user = create_user(username="dana")
    return create_membership(team=team, user=user, role=Membership.Role.DESIGNER)


def another_member(team, username: str) -> Membership:
    return create_membership(
        team=team, user=create_user(username=username), role=Membership.Role.DESIGNER
    )


def upload(
    width: int, height: int, *, color=(90, 140, 200), boxes=(), model_rule=None
) -> InputUpload:
    from studio.dashscope.catalog import CATALOG

    rule = model_rule or CATALOG["wan2.7-image-pro"].images
    image: NormalisedImage = normalise(make_image(width, height, fmt="JPEG", color=color), rule)
    return InputUpload(image=image, boxes=list(boxes))


def counters(membership: Membership) -> dict[str, tuple[int, int]]:
    """(used, reserved) for the person's and the team's day and month."""
    result = {}
    for counter in QuotaCounter.objects.filter(team=membership.team):
        who = "team" if counter.user_id is None else "person"
        result[f"{who}-{counter.period}"] = (counter.used, counter.reserved)
    return result


def open_image(field) -> Image.Image:
    with field.open("rb") as file:
        return Image.open(io.BytesIO(file.read()))


def answer_held(monkeypatch, client: object, call: str) -> threading.Event:
    """Hold the client's `call` (generate, submit...) until the event is set: a provider
    slow to answer, whoever is waiting for it."""
    answer = threading.Event()
    real = getattr(client, call)

    def held(*args, **kwargs):
        answer.wait(timeout=10)
        return real(*args, **kwargs)

    monkeypatch.setattr(client, call, held)
    return answer


def in_background(work: Callable[[], object]) -> threading.Thread:
    """Run `work` in a thread of its own, as another worker would, with its own database
    connection (closed after)."""

    def run() -> None:
        try:
            work()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread
