"""The gallery scenario of `make bench`: a team with 10,000 images, served by gunicorn.

Pages are timed over HTTP against a trivial logged-in page of the same server (the
person's recent jobs); queries are counted in-process for page 1 and page 200, which
must cost the same. Thumbnails are made by the worker's own `store_result` from
photo-like pictures (gradients, shapes, grain), not from the emulator's flat drawings,
which would compress to almost nothing and flatter the figure.
"""

from __future__ import annotations

import io
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

IMAGES = 10_000
DISTINCT = 24  # pictures made for real; the 10,000 rows share their files
# Requests of each kind: a p95 of 40 was the second-slowest request, and moved with any
# hiccup of the machine; 150 steady it.
ROUNDS = 150


def photo(seed: int, side: int = 1280) -> bytes:
    from PIL import Image, ImageDraw, ImageFilter

    rnd = random.Random(seed)
    base = Image.linear_gradient("L").resize((side, side)).rotate(rnd.randint(0, 359))
    bands = []
    for _ in "rgb":
        scale, offset = rnd.random(), rnd.randint(0, 80)
        bands.append(base.point([min(255, int(v * scale + offset)) for v in range(256)]))
    image = Image.merge("RGB", bands)
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x, y, r = rnd.randint(0, side), rnd.randint(0, side), rnd.randint(40, 300)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(rnd.randint(0, 255) for _ in "rgb"))
    image = image.filter(ImageFilter.GaussianBlur(2))
    # Grain and texture as a camera records them: what makes photos cost bytes.
    grain = Image.effect_noise((side, side), 40).convert("RGB")
    image = Image.blend(image, grain.filter(ImageFilter.GaussianBlur(0.6)), 0.3)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def populate() -> tuple[Any, list[int]]:
    """A team, a designer and IMAGES images, newest first; the designer and image ids."""
    from django.contrib.auth.models import User
    from django.utils import timezone

    from studio.accounts.models import Membership, Team
    from studio.generation.models import GeneratedImage, Job
    from studio.generation.worker.results import store_result

    team = Team.objects.create(name="Gallery bench", slug="gallery-bench")
    user = User.objects.create_user(username="gallery-bench")
    Membership.objects.create(team=team, user=user, role=Membership.Role.DESIGNER)
    now = timezone.now()

    def job(i: int) -> Job:
        return Job(
            team=team,
            author=user,
            kind=Job.Kind.TEXT_TO_IMAGE,
            model="wan2.6-t2i",
            prompt=f"Product shot {i}: a ceramic vase on linen, soft window light",
            parameters={"size": "1280*1280", "n": 1},
            images_requested=1,
            status=Job.Status.SUCCEEDED,
            created_at=now - timedelta(seconds=i),
        )

    made = []
    for i in range(DISTINCT):
        real = job(i)
        real.save()
        made.append(store_result(real, 0, photo(i)))
    jobs = Job.objects.bulk_create([job(i) for i in range(DISTINCT, IMAGES)], batch_size=1000)
    rows = []
    for i, row in enumerate(jobs, start=DISTINCT):
        source = made[i % DISTINCT]
        rows.append(
            GeneratedImage(
                job=row,
                team=team,
                index=0,
                image=source.image.name,
                thumbnail=source.thumbnail.name,
                mime=source.mime,
                width=source.width,
                height=source.height,
                bytes=source.bytes,
                sha256=source.sha256,
                created_at=row.created_at,
            )
        )
    GeneratedImage.objects.bulk_create(rows, batch_size=1000)
    from django.db import connection

    with connection.cursor() as cursor:
        # Fresh statistics, as autovacuum keeps them on a database that grew over time; a
        # table loaded a moment ago would otherwise be planned as if nearly empty.
        cursor.execute("ANALYZE")
    ids = list(
        GeneratedImage.objects.filter(team=team)
        .order_by("-created_at", "-id")
        .values_list("id", flat=True)
    )
    return user, ids


def session_for(user: Any) -> str:
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    return session.session_key


def page_200_url(ids: list[int]) -> str:
    from studio.gallery.forms import PAGE_SIZE, Cursor
    from studio.generation.models import GeneratedImage

    last_of_199 = GeneratedImage.objects.get(pk=ids[PAGE_SIZE * 199 - 1])
    return f"/gallery/?after={Cursor(last_of_199.created_at, last_of_199.pk)}"


def count_queries(user: Any, url: str) -> int:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    client.get(url)  # warm
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.status_code
    return len(queries)


def gallery(workdir: Path, free_port: Any, wait_for_port: Any) -> dict[str, Any]:
    import httpx
    from django.conf import settings

    from bench.run import percentile

    user, ids = populate()
    page_200 = page_200_url(ids)
    queries_1 = count_queries(user, "/gallery/")
    queries_200 = count_queries(user, page_200)
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "studio.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
        ],
        env={**os.environ, "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost"},
        stdout=(workdir / "gunicorn.log").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for_port(port)
        cookies = {settings.SESSION_COOKIE_NAME: session_for(user)}
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, cookies=cookies, timeout=30) as http:

            def timed(url: str) -> tuple[float, httpx.Response]:
                started = time.perf_counter()
                response = http.get(url)
                assert response.status_code == 200, (url, response.status_code)
                return (time.perf_counter() - started) * 1000, response

            for url in ("/jobs/recent", "/gallery/", page_200):
                timed(url)  # each worker warm
                timed(url)
            baseline, pages = [], []
            for _ in range(ROUNDS):
                baseline.append(timed("/jobs/recent")[0])
                pages.append(timed("/gallery/")[0])
                pages.append(timed(page_200)[0])
            html = timed("/gallery/")[1].text
            thumbs = re.findall(r'src="(/jobs/[0-9a-f-]+/images/\d+/thumb)"', html)
            thumb_bytes = [len(http.get(url).content) for url in thumbs]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)
    page_p95 = percentile(pages, 0.95)
    return {
        "bench": "gallery",
        "images": IMAGES,
        "page_p50_ms": round(statistics.median(pages), 1),
        "page_p95_ms": round(page_p95, 1),
        "baseline_p50_ms": round(statistics.median(baseline), 1),
        "baseline_p95_ms": round(percentile(baseline, 0.95), 1),
        "ratio": round(page_p95 / percentile(baseline, 0.95), 2),
        "queries": queries_1,
        "queries_page_200": queries_200,
        "page_kb": round((len(html.encode()) + sum(thumb_bytes)) / 1024, 1),
        "thumb_kb_avg": round(sum(thumb_bytes) / len(thumb_bytes) / 1024, 1),
        "thumbs_on_page": len(thumbs),
        "database": os.environ["DATABASE_URL"].split(":")[0],
    }
