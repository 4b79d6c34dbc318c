"""The JSON API, version 1: the same rules and services as the pages, for scripts.

django-ninja over Django REST framework: typed function views like the studio's own, an
OpenAPI description made from the type hints, and its docs page served from its own
static files (no CDN), with no settings for serialisers and viewsets to learn.
"""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.urls import reverse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, ValidationError

from studio.accounts.models import ModelPrice
from studio.api import schemas
from studio.api.auth import Caller, TokenAuth, caller
from studio.dashscope.catalog import Kind, ModelSpec, Option
from studio.generation.forms import offered_models
from studio.generation.models import GeneratedImage, Job
from studio.generation.sizes import size_choices
from studio.media import serve_image

api = NinjaAPI(
    title="Studio API",
    version="1",
    description=(
        "Send a personal access token (made on your settings page) as "
        "`Authorization: Bearer <token>`. It acts as you, with your role in the team it names."
    ),
    auth=TokenAuth(),
    urls_namespace="api",
    docs_url="/docs",
)


def _problem(
    request: HttpRequest, status: int, code: str, message: str, field: str | None = None
) -> HttpResponse:
    return api.create_response(
        request, {"code": code, "message": message, "field": field}, status=status
    )


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: Exception) -> HttpResponse:
    return _problem(
        request,
        401,
        "unauthenticated",
        "Send a personal access token as “Authorization: Bearer <token>”; make one on your "
        "settings page. A token revoked, expired or of a team you left opens nothing.",
    )


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Exception) -> HttpResponse:
    return _problem(request, 404, "not_found", str(exc) or "Nothing of your team has this id.")


@api.exception_handler(PermissionDenied)
def _forbidden(request: HttpRequest, exc: Exception) -> HttpResponse:
    return _problem(request, 403, "forbidden", str(exc) or "Your role does not allow this.")


@api.exception_handler(ValidationError)
def _invalid(request: HttpRequest, exc: Exception) -> HttpResponse:
    assert isinstance(exc, ValidationError)
    first: dict[str, Any] = exc.errors[0] if exc.errors else {}
    field = ".".join(str(part) for part in first.get("loc", ())[1:]) or None
    return _problem(request, 422, "invalid", str(first.get("msg", "Invalid request.")), field)


@api.get("/me", response=schemas.Me, summary="Who the token acts as")
def me(request: HttpRequest) -> dict[str, str]:
    found = caller(request)
    return {
        "username": found.membership.user.get_username(),
        "team": found.membership.team.name,
        "role": found.membership.role,
        "scope": found.token.scope,
    }


def _model(spec: ModelSpec, prices: dict[str, Any], currency: str) -> dict[str, Any]:
    kinds = sorted(kind.value for kind in spec.kinds)
    kind = Kind.TEXT_TO_IMAGE if Kind.TEXT_TO_IMAGE in spec.kinds else Kind.EDIT
    price = prices.get(spec.name)
    return {
        "name": spec.name,
        "label": spec.label,
        "kinds": kinds,
        "prompt_max": spec.prompt_max,
        "prompt_unit": str(spec.prompt_unit),
        "negative_prompt_max": spec.negative_prompt_max_chars
        if spec.supports(Option.NEGATIVE_PROMPT)
        else None,
        "images_min": spec.images.count[0] if spec.images else None,
        "images_max": spec.images.count[1] if spec.images else None,
        "regions_per_image": spec.max_boxes_per_image if spec.supports(Option.BBOX_LIST) else None,
        "n_min": spec.n.min,
        "n_max": spec.n.max,
        "sizes": [{"value": v, "label": label} for v, label in size_choices(spec, kind) if v],
        "options": sorted(option.value for option in spec.options),
        "price_per_image": str(price) if price is not None else None,
        "currency": currency,
    }


@api.get("/models", response=list[schemas.Model], summary="The models your team may use")
def models(request: HttpRequest) -> list[dict[str, Any]]:
    team = caller(request).membership.team
    specs = list(offered_models(team, Kind.TEXT_TO_IMAGE))
    specs += [spec for spec in offered_models(team, Kind.EDIT) if spec not in specs]
    prices, currency = ModelPrice.table(), ModelPrice.currency_in_use()
    return [_model(spec, prices, currency) for spec in specs]


def may_write(found: Caller) -> None:
    """A token that may only read changes nothing."""
    if not found.token.may_generate:
        raise PermissionDenied(
            "This token may only read; make one that may read and generate to change things."
        )


def image_fields(request: HttpRequest, image: GeneratedImage) -> dict[str, Any]:
    def address(variant: str) -> str:
        return request.build_absolute_uri(
            reverse("api:image_file", kwargs={"image_id": image.pk, "variant": variant})
        )

    return {
        "id": image.pk,
        "index": image.index,
        "width": image.width,
        "height": image.height,
        "mime": image.mime,
        "bytes": image.bytes,
        "review_state": image.review_state,
        "original": address("original"),
        "thumbnail": address("thumbnail"),
    }


@api.get("/jobs/{job_id}", response=schemas.Job, summary="A job: its state, history and images")
def job(request: HttpRequest, job_id: UUID) -> dict[str, Any]:
    team_id = caller(request).membership.team_id
    found = Job.objects.filter(pk=job_id, team_id=team_id).prefetch_related("events").first()
    if found is None:
        raise Http404("Your team has no job of this id.")
    images = found.images.kept().order_by("index")
    return {
        "id": str(found.pk),
        "kind": found.kind,
        "model": found.model,
        "model_label": found.model_label,
        "status": found.status,
        "status_label": found.status_for_designers,
        "prompt": found.prompt,
        "negative_prompt": found.negative_prompt,
        "parameters": found.parameters,
        "images_requested": found.images_requested,
        "images_charged": found.images_charged,
        "brand_kit": found.kit_name,
        "created_at": found.created_at,
        "finished_at": found.finished_at,
        "history": [
            {
                "at": event.at,
                "status": event.status,
                "message": event.message,
                "code": event.code,
            }
            for event in found.events.all()
        ],
        "images": [image_fields(request, image) for image in images],
    }


@api.get(
    "/images/{image_id}/files/{variant}",
    url_name="image_file",
    summary="An image's file: the original or its thumbnail",
    response={200: None},
)
def image_file(
    request: HttpRequest, image_id: int, variant: Literal["original", "thumbnail"]
) -> HttpResponseBase:
    membership = caller(request).membership
    rows = GeneratedImage.objects.filter(pk=image_id, team_id=membership.team_id)
    image = rows.select_related("job").first()
    if image is None or not image.is_visible_to(membership):
        raise Http404("Your team has no image of this id.")
    if variant == "original":
        name = f"{image.job_id}-{image.index + 1}.{image.mime.rsplit('/', 1)[-1]}"
        return serve_image(image.image, image.mime, max_age=3600, filename=name)
    return serve_image(image.thumbnail, "image/webp", max_age=3600)
