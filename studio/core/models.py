"""What the studio knows about its own processes."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import DurationField, ExpressionWrapper, F
from django.db.models.functions import Now


class WorkerHeartbeat(models.Model):
    """One row per running worker cluster, beaten every STUDIO_WORKER_HEARTBEAT_SECONDS.

    Written by `manage.py qcluster` from a thread of its main process for as long as the
    cluster's sentinel lives, idle or not, and removed when the cluster stops. Times come
    from the database's clock, the one every host agrees on.
    """

    name = models.CharField(max_length=200, primary_key=True)  # host:pid:cluster name
    host = models.CharField(max_length=100)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    beat_at = models.DateTimeField()

    # A row silent for this many intervals belongs to a cluster that is dead or stuck.
    FRESH_INTERVALS = 3
    # Rows of clusters that died without removing theirs stay this long, for the record.
    KEEP_STALE = timedelta(hours=1)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"Worker {self.name}"

    @classmethod
    def beat(cls, name: str, *, host: str, pid: int) -> None:
        if not cls.objects.filter(name=name).update(beat_at=Now()):
            cls.objects.create(name=name, host=host, pid=pid, started_at=Now(), beat_at=Now())

    @classmethod
    def prune(cls) -> int:
        deleted, _ = cls.objects.filter(beat_at__lt=Now() - cls.KEEP_STALE).delete()
        return deleted

    @classmethod
    def fresh_window(cls) -> timedelta:
        return timedelta(seconds=cls.FRESH_INTERVALS * settings.STUDIO_WORKER_HEARTBEAT_SECONDS)

    @classmethod
    def fresh(cls, *, host: str | None = None) -> list[dict[str, object]]:
        """The clusters heard from within the window: name and seconds since their beat."""
        rows = cls.objects.filter(beat_at__gte=Now() - cls.fresh_window())
        if host is not None:
            rows = rows.filter(host=host)
        age = ExpressionWrapper(Now() - F("beat_at"), output_field=DurationField())
        return [
            {"name": name, "age_seconds": round(max(since.total_seconds(), 0.0), 1)}
            for name, since in rows.annotate(age=age).values_list("name", "age")
        ]
