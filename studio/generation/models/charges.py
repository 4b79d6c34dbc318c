"""The ledger of a job's images: reserved when it is created, settled once it ends."""

from __future__ import annotations

from django.db import IntegrityError, models, transaction
from django.utils import timezone

from studio.accounts.models import QuotaCounter
from studio.generation.models.job import Job


class QuotaCharge(models.Model):
    """The ledger: one reservation and at most one settlement per job."""

    class Kind(models.TextChoices):
        RESERVE = "reserve", "Reserved"
        SETTLE = "settle", "Settled"

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="quota_charges")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    images = models.PositiveSmallIntegerField()  # reserved, or charged at settlement
    counter_ids = models.JSONField(default=list)
    # The model's price per image when the job was created: what its money is held and
    # settled at, whatever the price table says later.
    unit_price = models.DecimalField(max_digits=10, decimal_places=4, default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "kind"], name="unique_charge_per_job"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.images} images for job {self.job_id}"

    @classmethod
    def settle(cls, job: Job, charged: int) -> bool:
        """Charge a job for `charged` stored images and release the rest, exactly once."""
        with transaction.atomic():
            reservation = cls.objects.filter(job=job, kind=cls.Kind.RESERVE).first()
            if reservation is None:
                return False
            try:
                with transaction.atomic():
                    cls.objects.create(
                        job=job,
                        kind=cls.Kind.SETTLE,
                        images=charged,
                        counter_ids=reservation.counter_ids,
                        unit_price=reservation.unit_price,
                    )
            except IntegrityError:
                return False  # settled already
            QuotaCounter.settle(
                reservation.counter_ids,
                reserved=reservation.images,
                charged=charged,
                unit_price=reservation.unit_price,
            )
            Job.objects.filter(pk=job.pk).update(images_charged=charged)
            job.images_charged = charged
        return True
