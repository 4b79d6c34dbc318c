from __future__ import annotations

import math
from typing import Any

from axes.helpers import get_client_username, get_cool_off
from axes.models import AccessAttempt
from django.contrib.auth.forms import AuthenticationForm
from django.db.models import Max
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from studio.accounts.addresses import address_locked_until


def locked_out(
    request: HttpRequest, response: HttpResponse | None, credentials: dict[str, Any] | None
) -> HttpResponse:
    """The login page for a username locked out by too many failures, or for an address
    too many logins failed from, saying until when.

    django-axes calls this instead of the login view's answer, on the site's login and the
    admin's alike. The lockout ends a cool-off after the last failure counted.
    """
    username = get_client_username(request, credentials) or ""
    address_locked = getattr(request, "studio_address_locked", False)
    if address_locked:
        until = address_locked_until(request)
    else:
        cool_off = get_cool_off(request)
        assert cool_off is not None  # settings.AXES_COOLOFF_TIME
        last = AccessAttempt.objects.filter(username=username).aggregate(Max("attempt_time"))
        until = (last["attempt_time__max"] or timezone.now()) + cool_off
    context = {
        "form": AuthenticationForm(request, initial={"username": username}),
        "next": request.POST.get("next") or request.GET.get("next", ""),
        "locked_until": until,
        "address_locked": address_locked,
        # Rounded up: "in 15 minutes" right after the lockout, never "in 0 minutes".
        "minutes_left": max(1, math.ceil((until - timezone.now()).total_seconds() / 60)),
    }
    return render(request, "registration/login.html", context, status=429)
