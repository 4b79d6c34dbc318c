"""`manage.py worker_health`: exit 0 if a worker cluster beats, 1 if none does.

For a container's liveness probe of the worker: `--this-host` looks only at the clusters
of this host, so a stuck cluster is restarted even while others elsewhere are fine.
"""

from __future__ import annotations

import socket
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from studio.generation.models import WorkerHeartbeat


class Command(BaseCommand):
    help = "Exits 0 when a worker cluster has written its heartbeat recently, 1 otherwise."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--this-host",
            action="store_true",
            help="Only count worker clusters running on this host.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        host = socket.gethostname() if options["this_host"] else None
        workers = WorkerHeartbeat.fresh(host=host)
        window = WorkerHeartbeat.fresh_window().total_seconds()
        if not workers:
            where = f" on {host}" if host else ""
            raise CommandError(
                f"No worker heartbeat{where} in the last {window:g} s.", returncode=1
            )
        for worker in workers:
            self.stdout.write(f"{worker['name']}: beat {worker['age_seconds']} s ago")
