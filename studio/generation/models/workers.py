"""What the worker keeps about itself: named leases, the terms they were held for, and
the heartbeat of each running worker cluster."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import DurationField, ExpressionWrapper, F, Q
from django.db.models.functions import Now
from django.utils import timezone


class WorkerLease(models.Model):
    """A named lease, so that one process at a time does a job-wide duty (the dispatcher).

    Times come from the database's clock, the one clock every host agrees on.
    """

    name = models.CharField(max_length=32, primary_key=True)
    owner = models.CharField(max_length=96, blank=True)
    until = models.DateTimeField(null=True, blank=True)
    # What the holder hands to its successor (the dispatcher: its recent request times,
    # so the provider's per-second limits hold across the hand-over).
    state = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"{self.name} lease held by {self.owner or 'nobody'}"

    @classmethod
    def acquire(cls, name: str, owner: str, seconds: float) -> bool:
        free = Q(until__isnull=True) | Q(until__lt=Now()) | Q(owner=owner)
        until = Now() + timedelta(seconds=seconds)
        # One UPDATE on every pass; the row is made the first time only.
        if cls.objects.filter(free, name=name).update(owner=owner, until=until):
            return True
        _, created = cls.objects.get_or_create(name=name)
        return created and bool(
            cls.objects.filter(free, name=name).update(owner=owner, until=until)
        )

    @classmethod
    def renew(cls, name: str, owner: str, seconds: float) -> bool:
        """Extend a lease `owner` holds; False if it holds it no longer."""
        until = Now() + timedelta(seconds=seconds)
        return bool(cls.objects.filter(name=name, owner=owner).update(until=until))

    @classmethod
    def release(cls, name: str, owner: str, state: dict | None = None) -> None:
        fields: dict = {"owner": "", "until": None}
        if state is not None:
            fields["state"] = state
        cls.objects.filter(name=name, owner=owner).update(**fields)

    @classmethod
    def handed_over(cls, name: str) -> dict:
        return cls.objects.filter(name=name).values_list("state", flat=True).first() or {}

    @classmethod
    def is_held(cls, name: str) -> bool:
        return cls.objects.filter(name=name, until__gte=Now()).exists()


class LeaseTerm(models.Model):
    """Who held a lease, from when to when, by the database's clock.

    Leases keep two workers from acting on one job (or two dispatchers from running) at
    once; these terms are the record that lets an audit show they did. A term a killed
    worker left open ends, at the latest, when its lease ran out.
    """

    lease = models.CharField(max_length=64)  # "dispatcher", or "job:<id>" for a job's step
    owner = models.CharField(max_length=96)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["lease", "started_at"], name="lease_term_lease"),
            models.Index(fields=["started_at"], name="lease_term_started"),
        ]

    def __str__(self) -> str:
        return f"{self.lease} held by {self.owner}"

    @staticmethod
    def of_job(job_id: object) -> str:
        """The lease a job's step holds on its job."""
        return f"job:{job_id}"

    @classmethod
    def begin(cls, lease: str, owner: str, *, seconds: float | None = None) -> None:
        expires = Now() + timedelta(seconds=seconds) if seconds is not None else None
        cls.objects.create(lease=lease, owner=owner, started_at=Now(), expires_at=expires)

    @classmethod
    def end(cls, lease: str, owner: str | None = None) -> None:
        terms = cls.objects.filter(lease=lease, ended_at__isnull=True)
        if owner is not None:
            terms = terms.filter(owner=owner)
        terms.update(ended_at=Now())

    @classmethod
    def purge(cls, days: int = 30) -> None:
        cls.objects.filter(started_at__lt=timezone.now() - timedelta(days=days)).delete()


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
        # The table it was made with, when heartbeats were kept by the core app.
        db_table = "core_workerheartbeat"
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
