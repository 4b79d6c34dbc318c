"""django-q2 entry points: thin, and given ids only (never a key or a URL).

Queued task rows and the reconcile schedule name these functions by their dotted paths
(`studio.generation.tasks.dispatch`...), so they stay here; the work is done in
studio.generation.worker.
"""

from __future__ import annotations

from axes.handlers.proxy import AxesProxyHandler

from studio.generation.models import GeneratedImage, LeaseTerm, StagedImage, WorkerHeartbeat
from studio.generation.worker import provider, runner, steps
from studio.generation.worker.runner import kick

__all__ = ["dispatch", "kick", "reconcile", "run_job_step", "take_over"]


def dispatch() -> None:
    runner.run_slice(wait_for_lease=0.0)


def take_over() -> None:
    """The next slice, queued by the running dispatcher just before its own ends; it waits
    for the lease instead of exiting, so polling carries on without a pause."""
    runner.run_slice(wait_for_lease=runner.TAKE_OVER_WAIT_SECONDS)


def run_job_step(job_id: str) -> None:
    with provider.get_client() as client:
        steps.run_step(job_id, client)


def reconcile() -> None:
    """Every minute: restart the dispatcher if it died while jobs are open; drop reference
    images staged in edit forms nobody sent, images past their time in the trash, and
    lease records, failed-login records and heartbeats of clusters long gone."""
    runner.restart_if_needed()
    StagedImage.purge()
    GeneratedImage.purge_trash()
    LeaseTerm.purge()
    AxesProxyHandler.reset_failure_logs(age_days=30)  # the lockouts look back minutes
    WorkerHeartbeat.prune()
