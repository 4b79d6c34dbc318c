"""`manage.py qcluster`: django-q2's cluster, stopped gracefully however SIGTERM arrives,
and seen alive through a heartbeat row (studio.generation.worker.heartbeat).

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
flag (studio.generation.worker.shutdown), on which the dispatcher ends its slice and gives
up its lease at once, and then stops the cluster the stock way. The supervisor must allow
for the longest task (the `timeout` in Q_CLUSTER) before it sends SIGKILL.

This command replaces django-q2's own because studio.generation comes before django_q in
INSTALLED_APPS.
"""

from __future__ import annotations

import os
import signal
from types import FrameType

from django.conf import settings
from django_q.cluster import Cluster
from django_q.management.commands import qcluster

from studio.generation.worker import shutdown
from studio.generation.worker.heartbeat import Heartbeat

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Command(qcluster.Command):
    help = "Starts the task worker cluster; SIGTERM or SIGINT stop it after the running tasks."

    def handle(self, *args: object, **options: object) -> None:
        settings.SECRET_KEY  # noqa: B018 -- django-q2 signs tasks with it: fail now if unset
        if options.get("cluster_name"):
            os.environ["Q_CLUSTER_NAME"] = str(options["cluster_name"])
        shutdown.arm()
        cluster = Cluster()

        def stop(signum: int, frame: FrameType | None) -> None:
            if shutdown.requested():
                return  # already stopping; SIGKILL is the way to hurry it
            shutdown.request()
            cluster.sig_handler(signum, frame)

        for number in STOP_SIGNALS:
            signal.signal(number, stop)
        _start_with_sigterm_blocked(cluster)
        if options.get("run_once"):
            stop(signal.SIGTERM, None)
            return
        beats = Heartbeat(cluster, interval=settings.STUDIO_WORKER_HEARTBEAT_SECONDS)
        beats.start()
        beats.join()  # signals are handled meanwhile, in this thread


def _start_with_sigterm_blocked(cluster: Cluster) -> None:
    # Blocked while the sentinel is forked, so it and everything it forks inherit the
    # block; a SIGTERM that arrives meanwhile waits here and is handled once unblocked.
    unblocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        cluster.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, unblocked)
