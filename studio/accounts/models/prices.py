"""The price table: what each model costs per image, which budgets and reports count in."""

from __future__ import annotations

from decimal import Decimal

from django.db import models


class ModelPrice(models.Model):
    """What the provider bills per image it makes, per model, as the admins keep it."""

    model = models.CharField(max_length=64, unique=True)
    price_per_image = models.DecimalField(max_digits=10, decimal_places=4)
    currency = models.CharField(max_length=3, default="USD")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # The table it was made with, when prices were kept by the generation app.
        db_table = "generation_modelprice"
        ordering = ["model"]

    def __str__(self) -> str:
        return f"{self.model}: {self.price_per_image} {self.currency} per image"

    @classmethod
    def table(cls) -> dict[str, Decimal]:
        return dict(cls.objects.values_list("model", "price_per_image"))

    @classmethod
    def currency_in_use(cls) -> str:
        return cls.objects.values_list("currency", flat=True).first() or "USD"


def money(amount: Decimal) -> str:
    """At least cents, and the fractions of a cent a price table may hold: 0.40, 0.035."""
    text = f"{amount.normalize():f}"
    return text if len(text.partition(".")[2]) >= 2 else f"{amount:.2f}"
