"""The worker cluster seen alive: a heartbeat row written from its main process for as
long as its sentinel lives, and removed when it stops."""

from __future__ import annotations

import contextlib
import socket
import threading

from django.db import DatabaseError, connection
from django_q.cluster import Cluster

from studio.generation.models import WorkerHeartbeat


class Heartbeat(threading.Thread):
    """Writes this cluster's heartbeat row while its sentinel lives, and removes it after."""

    def __init__(self, cluster: Cluster, *, interval: float) -> None:
        super().__init__(name="heartbeat")
        self.cluster, self.interval = cluster, interval
        self.host = socket.gethostname()
        self.row_name = f"{self.host}:{cluster.pid}:{cluster.name}"

    def run(self) -> None:
        sentinel = self.cluster.sentinel
        try:
            while sentinel is not None and sentinel.is_alive():
                try:
                    WorkerHeartbeat.beat(self.row_name, host=self.host, pid=self.cluster.pid)
                except DatabaseError:
                    connection.close()  # the probes see the gap; a new connection next time
                sentinel.join(self.interval)
            with contextlib.suppress(DatabaseError):  # if so, the row goes stale instead
                WorkerHeartbeat.objects.filter(name=self.row_name).delete()
        finally:
            connection.close()
