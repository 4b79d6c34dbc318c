"""Handing a stored image to the browser, once a view has checked who may see it.

Every file the browser sees goes through `serve_image`. From the filesystem the file is
streamed. From S3-compatible storage the answer is a redirect to a presigned URL of a
few minutes, made here and never written into a page: it is as good as a password until
it lapses, so only the redirect's Location carries it, and the browser keeps that answer
for half the URL's lifetime at most.
"""

from __future__ import annotations

from django.core.files.storage import Storage
from django.db.models.fields.files import FieldFile
from django.http import FileResponse, Http404, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.utils.http import content_disposition_header

# Only these are ever served, and always as what they are.
INLINE_TYPES = {"image/png", "image/jpeg", "image/webp"}


def signs_urls(storage: Storage) -> bool:
    """True for a store that answers url() with a signed, expiring URL (django-storages'
    S3Storage with querystring_auth); the filesystem has no such URLs to give."""
    return bool(getattr(storage, "querystring_auth", False))


def serve_image(
    field: FieldFile,
    mime: str,
    *,
    max_age: int,
    filename: str = "",
    attachment: bool = False,
) -> HttpResponseBase:
    """The stored image as the type it was stored as, never as anything the browser would
    run; `attachment` asks the browser to save it as `filename`."""
    if mime not in INLINE_TYPES:
        raise Http404("No such image.")
    disposition = content_disposition_header(attachment, filename) if filename else None
    if signs_urls(field.storage):
        return _redirect_to_signed_url(field, mime, disposition, max_age=max_age)
    response = FileResponse(field.open("rb"), content_type=mime)
    if disposition:
        response["Content-Disposition"] = disposition
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = f"private, max-age={max_age}"
    return response


def _redirect_to_signed_url(
    field: FieldFile, mime: str, disposition: str | None, *, max_age: int
) -> HttpResponse:
    # The store answers with the type and disposition written into the signed URL, so a
    # file is never served as anything but the image type the studio recorded for it.
    parameters = {"ResponseContentType": mime}
    if disposition:
        parameters["ResponseContentDisposition"] = disposition
    # The browser may keep the redirect, and the image it leads to, for half the URL's
    # lifetime: a kept redirect is never followed to a lapsed URL, and a gallery opened
    # again meanwhile shows its thumbnails from the cache instead of fetching them anew
    # (every redirect signs a new URL, which no cache would recognise).
    lifetime = int(getattr(field.storage, "querystring_expire", 0) or 0)
    keep = min(max_age, lifetime // 2)
    if keep > 0:
        parameters["ResponseCacheControl"] = f"private, max-age={keep}"
    # S3 storage's url() takes the signed response's parameters; Storage's stub does not.
    url = field.storage.url(field.name, parameters=parameters)  # type: ignore[call-arg]
    response = HttpResponseRedirect(url)
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = f"private, max-age={keep}" if keep > 0 else "private, no-store"
    return response
