"""Log lines that say which job they are about."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, ParamSpec, TypeVar, cast

from studio.logs import log_context

if TYPE_CHECKING:
    from studio.generation.models import Job

P = ParamSpec("P")
R = TypeVar("R")


def acting_on_job(func: Callable[P, R]) -> Callable[P, R]:
    """Run `func` with its `job` argument's id, model and task id on every log line."""
    position = list(inspect.signature(func).parameters).index("job")

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        # The decorated function's own `job` parameter, so a Job.
        job = cast("Job", args[position] if len(args) > position else kwargs["job"])
        with log_context(job_id=job.pk, model=job.model, task_id=job.provider_task_id):
            return func(*args, **kwargs)

    return wrapper
