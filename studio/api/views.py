"""Each person's personal access tokens: made (its secret shown once) and revoked."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from studio.accounts.access import current_membership
from studio.api.models import AccessToken
from studio.audit.models import Entry, record
from studio.http import AppRequest

NEW_SECRET = "new-access-token"  # kept in the session only until the next page shows it
LIFETIMES = [("30", "30 days"), ("90", "90 days"), ("365", "A year"), ("", "Never")]


class TokenForm(forms.Form):
    name = forms.CharField(
        max_length=80, help_text="What uses it, e.g. “Spreadsheet batch” or “Design plugin”."
    )
    scope = forms.ChoiceField(
        choices=AccessToken.Scope.choices,
        initial=AccessToken.Scope.READ,
        widget=forms.RadioSelect,
        help_text="Read: jobs, images and the gallery. Read and generate: also sends jobs, "
        "on your quota, with your role's rights.",
    )
    lifetime = forms.ChoiceField(choices=LIFETIMES, initial="90", required=False, label="Expires")


@never_cache  # the page that shows a secret once is never kept by a browser or proxy
@require_http_methods(["GET", "POST"])
@login_required
def tokens(request: AppRequest) -> HttpResponse:
    membership = current_membership(request.user)
    if membership is None:
        raise Http404("No team.")
    form = TokenForm(request.POST or None)
    # Shown on the page the form's post leads to, once: a reload makes no second token.
    secret = request.session.pop(NEW_SECRET, "")
    if request.method == "POST" and form.is_valid():
        days = form.cleaned_data["lifetime"]
        token, secret = AccessToken.issue(
            request.user,
            membership.team,
            name=form.cleaned_data["name"],
            scope=form.cleaned_data["scope"],
            expires_at=timezone.now() + timedelta(days=int(days)) if days else None,
        )
        record(
            request,
            Entry.Action.TOKEN,
            f"Access token {token.name} ({token.shown}…)",
            team=membership.team,
            changes={"scope": [None, token.scope], "expires_at": [None, str(token.expires_at)]},
        )
        request.session[NEW_SECRET] = secret
        return redirect("tokens")
    mine = AccessToken.objects.filter(user=request.user).select_related("team")
    context = {"form": form, "secret": secret, "tokens": mine, "team": membership.team}
    return render(request, "api/tokens.html", context)


@require_POST
@login_required
def token_revoke(request: AppRequest, token_id: int) -> HttpResponse:
    token = get_object_or_404(AccessToken, pk=token_id, user=request.user)
    if token.revoke():
        record(
            request,
            Entry.Action.TOKEN,
            f"Access token {token.name} ({token.shown}…)",
            team=token.team,
            changes={"revoked": [False, True]},
        )
        messages.success(request, f"“{token.name}” is revoked: it opens nothing any more.")
    return redirect("tokens")
