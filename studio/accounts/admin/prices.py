"""The price table in the admin: one price per model, every price in one currency."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse

from studio.accounts.models import ModelPrice
from studio.dashscope.catalog import MODELS


class ModelPriceForm(forms.ModelForm):
    model = forms.ChoiceField(
        choices=[(spec.name, f"{spec.label} ({spec.name})") for spec in MODELS]
    )

    class Meta:
        model = ModelPrice
        fields = ["model", "price_per_image", "currency"]

    def clean_currency(self) -> str:
        """One currency for every price: budgets, estimates and the usage report add the
        amounts up, and 0.20 CNY plus 0.03 USD is no amount at all."""
        currency = self.cleaned_data["currency"].strip().upper()
        if not (len(currency) == 3 and currency.isascii() and currency.isalpha()):
            raise forms.ValidationError("Write the currency as its three-letter code, as USD.")
        others = ModelPrice.objects.exclude(pk=self.instance.pk).exclude(currency=currency)
        in_use = others.values_list("currency", flat=True).first()
        if in_use:
            raise forms.ValidationError(
                f"The other prices are in {in_use}, and budgets and the usage report add "
                f"prices up: enter this one in {in_use} too. To change the currency, delete "
                "the other prices and enter them again in the new one."
            )
        return currency


@admin.register(ModelPrice)
class ModelPriceAdmin(admin.ModelAdmin):
    form = ModelPriceForm
    list_display = ["model", "price_per_image", "currency", "updated_at"]


class TemporaryRedirect(HttpResponseRedirect):
    status_code = 307  # the method and body go along: a form sent from an old tab arrives


def prices_moved(request: HttpRequest, rest: str) -> HttpResponseRedirect:
    """The price pages under the address they had while the generation app kept prices."""
    url = reverse("admin:accounts_modelprice_changelist") + rest
    if request.META.get("QUERY_STRING"):
        url += "?" + request.META["QUERY_STRING"]
    return TemporaryRedirect(url) if request.method == "POST" else HttpResponseRedirect(url)
