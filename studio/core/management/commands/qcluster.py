"""`manage.py qcluster`: django-q2's cluster, stopped gracefully however SIGTERM arrives,
and seen alive through a heartbeat row.

What django-q2 1.11.1 does on its own: the main process turns SIGTERM and SIGINT into a
stop event; its sentinel then stops fetching tasks, lets every worker finish the task in
hand (with no time limit), and stops the monitor. But the sentinel resets SIGTERM to its
default action before forking the pusher, the monitor and the workers, so when SIGTERM
reaches the whole process group (systemd's default, supervisord's `stopasgroup`, `kill --
-PGID`, a shell stopping its jobs) all of them die at once: a download is cut off halfway
after its attempt was counted, its results are never acknowledged, and the main process
hangs on the stop event's lock, which the killed sentinel held.

So here SIGTERM is blocked before the cluster forks, and every process of the cluster
inherits the block: only this main process acts on the signal. It sets the shared stop
flag (studio.generation.shutdown), on which the dispatcher ends its slice and gives up its
lease at once, and then stops the cluster the stock way. The supervisor must allow for
the longest task (the `timeout` in Q_CLUSTER) before it sends SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
from types import FrameType
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection
from django_q.cluster import Cluster
from django_q.management.commands import qcluster

from studio.core.models import WorkerHeartbeat
from studio.generation import shutdown

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Command(qcluster.Command):
    help = "Starts the task worker cluster; SIGTERM or SIGINT stop it after the running tasks."

    def handle(self, *args: Any, **options: Any) -> None:
        settings.SECRET_KEY  # noqa: B018 -- django-q2 signs tasks with it: fail now if unset
        if options.get("cluster_name"):
            os.environ["Q_CLUSTER_NAME"] = options["cluster_name"]
        shutdown.arm()
        cluster = Cluster()

        def stop(signum: int, frame: FrameType | None) -> None:
            if shutdown.requested():
                return  # already stopping; SIGKILL is the way to hurry it
            shutdown.request()
            cluster.sig_handler(signum, frame)

        for number in STOP_SIGNALS:
            signal.signal(number, stop)
        # Blocked while the sentinel is forked, so it and everything it forks inherit the
        # block; a SIGTERM that arrives meanwhile waits here and is handled once unblocked.
        unblocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        try:
            cluster.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, unblocked)
        if options.get("run_once"):
            stop(signal.SIGTERM, None)
            return
        beats = Heartbeat(cluster, interval=settings.STUDIO_WORKER_HEARTBEAT_SECONDS)
        beats.start()
        beats.join()  # signals are handled meanwhile, in this thread


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
