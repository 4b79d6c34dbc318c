"""`manage.py qcluster`, except that a job step storing the results of a job whose prompt
says "#crash-worker" kills its own process, as a segfault or the kernel's OOM killer would.

For the crash-loop test: a real cluster, real process deaths, the real respawn.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")

import django

django.setup()

from django.core.management import call_command  # noqa: E402

from studio.generation.worker import downloads as worker  # noqa: E402

CRASH_WORD = "#crash-worker"
real_store_result = worker.store_result


def store_result(job, index, data):  # type: ignore[no-untyped-def]
    if CRASH_WORD in job.prompt:
        os.kill(os.getpid(), signal.SIGKILL)
    return real_store_result(job, index, data)


# The cluster forks its workers from this process, so they inherit the replacement.
worker.store_result = store_result

if __name__ == "__main__":
    call_command("qcluster")
