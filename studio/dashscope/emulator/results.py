"""Result images: kept, signed as OSS signs a URL, and downloaded from the result hosts.

A result's URL names one of the provider's OSS hosts (the configured `result_hosts` in
turn), never the API's origin, and carries an `Expires` and a `Signature`: a download
checks both before it looks for the file, as OSS does. The PNG is drawn on first download
(or in the background as its task is made, for a served emulator) and kept for a while.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

from studio.dashscope.emulator.config import DEFAULT_RESULT_HOSTS
from studio.dashscope.emulator.render import RenderPlan, render_png
from studio.dashscope.emulator.wire import EmResponse, oss_error

if TYPE_CHECKING:
    from studio.dashscope.emulator.core import Emulator
    from studio.dashscope.emulator.tasks import Task

RESULT_PATH = re.compile(r"^/results/([0-9a-f]{32})\.png$")
# Drawn results kept for downloads: enough for every task a busy served emulator runs.
RENDERED_KEPT = 256


@dataclass
class Result:
    plan: RenderPlan
    task: Task | None  # None for sync results
    created_at: float
    host: str  # the OSS host its URL names


def result_expiry(em: Emulator, result: Result) -> float:
    if result.task is not None and (not result.task.scheduled or result.task.canceled_at):
        # Not made yet (or never to be): a URL is signed only once the task ends.
        return float("inf") if not result.task.canceled_at else result.task.canceled_at
    made = result.task.end_at if result.task else result.created_at
    return made + em.config.result_ttl_seconds


def new_results(em: Emulator, plans: list[RenderPlan], task: Task | None) -> list[str]:
    """Keep a result for each plan, each on the next result host; their ids."""
    ids = []
    with em._lock:
        em._purge(em.clock.now())
        for plan in plans:
            result_id = uuid.uuid4().hex
            em.results[result_id] = Result(
                plan=plan, task=task, created_at=em.clock.now(), host=_next_host(em)
            )
            ids.append(result_id)
    if em._prerender is not None and task is not None:
        for result_id in ids:
            em._prerender.submit(png, em, result_id)
    return ids


def _next_host(em: Emulator) -> str:
    """The host of a new result: the configured hosts in turn, so that every run sees
    each kind the provider hands out."""
    hosts = em.config.result_hosts or DEFAULT_RESULT_HOSTS
    host = hosts[next(em._host_turn) % len(hosts)]
    return host.replace("{hex}", em._host_hex)


def _signature(em: Emulator, result_id: str, expires: int) -> str:
    message = f"GET\n\n\n{expires}\n/dashscope-result-emulator/{result_id}.png".encode()
    digest = hmac.new(em._secret, message, hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def signed_url(em: Emulator, result_id: str) -> str:
    """A result URL as OSS signs one: on a result host, never on the API's origin."""
    result = em.results[result_id]
    expires = int(result_expiry(em, result))
    signature = quote(_signature(em, result_id, expires), safe="")
    return (
        f"https://{result.host}/results/{result_id}.png?Expires={expires}"
        f"&OSSAccessKeyId=LTAI5tEmulatorKey&Signature={signature}"
    )


def download(em: Emulator, result_id: str, query: dict[str, str]) -> EmResponse:
    """`GET /results/<id>.png` on a result host, answered as OSS answers it."""
    em.counts["result_downloads"] += 1
    # As OSS does: the signature and its expiry first, then whether the object is there,
    # so an expired URL answers the same before and after the result is cleaned away.
    expires_raw, signature = query.get("Expires", ""), query.get("Signature", "")
    if not expires_raw.isdigit() or not signature:
        return oss_error(403, "AccessDenied", "AccessDenied")
    if not hmac.compare_digest(signature, _signature(em, result_id, int(expires_raw))):
        return oss_error(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        )
    if em.clock.now() > int(expires_raw):
        return oss_error(403, "AccessDenied", "Request has expired.")
    if result_id not in em.results:
        return oss_error(404, "NoSuchKey", "The specified key does not exist.")
    return EmResponse(200, png(em, result_id), content_type="image/png")


def png(em: Emulator, result_id: str) -> bytes:
    """A result's image: drawn once, then kept among the last RENDERED_KEPT drawn."""
    with em._render_lock:
        if result_id in em._rendered:
            em._rendered.move_to_end(result_id)
            return em._rendered[result_id]
    image = render_png(em.results[result_id].plan)
    with em._render_lock:
        em._rendered[result_id] = image
        while len(em._rendered) > RENDERED_KEPT:
            em._rendered.popitem(last=False)
    return image
