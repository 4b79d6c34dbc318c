"""The generate form, the job page with its live status, and the image files behind them."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from studio.accounts.models import Membership
from studio.generation.models import Job
from tests.support.factories import create_membership, create_team, create_user
from tests.support.pipeline import Pipeline


@pytest.fixture
def designer_client(client, member):
    client.force_login(member.user)
    return client


def test_the_form_offers_only_what_the_chosen_model_takes(designer_client):
    page = designer_client.get(reverse("generate") + "?model=qwen-image-max").content.decode()
    assert "1664×928 (16:9)" in page and "928×1664 (9:16)" in page
    assert 'name="custom_size"' not in page  # five fixed sizes only
    assert 'name="negative_prompt"' in page and 'data-max="800"' in page
    assert not [tag for tag in re.findall(r"<textarea[^>]*>", page) if "maxlength" in tag]
    wan27 = designer_client.get(reverse("generate") + "?model=wan2.7-image-pro").content.decode()
    assert "4K (4096×4096 for text to image)" in wan27
    assert 'name="negative_prompt"' not in wan27 and 'name="thinking_mode"' in wan27


def test_switching_model_keeps_the_prompt_and_returns_only_the_form_to_htmx(designer_client):
    response = designer_client.post(
        reverse("generate"),
        {"model": "wan2.6-t2i", "prompt": "A lighthouse", "switch_model": "1"},
        HTTP_HX_REQUEST="true",
    )
    page = response.content.decode()
    assert page.lstrip().startswith('<form id="generate-form"')
    assert "A lighthouse</textarea>" in page and "<html" not in page


def test_submitting_creates_the_job_and_shows_its_page(designer_client, member, media):
    response = designer_client.post(
        reverse("generate"),
        {
            "model": "wan2.6-t2i",
            "prompt": "A lighthouse at dusk",
            "size": "1280*1280",
            "n": "2",
            "prompt_extend": "on",
        },
    )
    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    assert job.parameters == {
        "size": "1280*1280",
        "n": 2,
        "prompt_extend": True,
        "watermark": False,
    }
    assert job.author == member.user


def test_a_request_the_provider_would_refuse_is_shown_next_to_the_field(designer_client):
    response = designer_client.post(
        reverse("generate"),
        {
            "model": "wan2.6-t2i",
            "prompt": "A lighthouse",
            "size": "1280*1280",
            "custom_size": "3000×500",
            "n": "1",
        },
    )
    page = response.content.decode()
    assert response.status_code == 200 and not Job.objects.exists()
    assert "aspect ratio must be between 1:4 to 4:1" in page
    assert "field-custom_size has-error" in page
    # The field names its help and its error for screen readers, and both are there.
    import re

    described = re.search(r'name="custom_size"[^>]*aria-describedby="([^"]+)"', page)
    assert described, "the size field names nothing that describes it"
    for described_by in described[1].split():
        assert f'id="{described_by}"' in page, described_by
    assert "id_custom_size_error" in described[1]


def test_a_spent_quota_is_said_before_and_after_submitting(designer_client, member):
    Membership.objects.filter(pk=member.pk).update(images_per_day=1)
    page = designer_client.get(reverse("generate")).content.decode()
    assert "<strong>1</strong> of 1 left today</span>." in page
    response = designer_client.post(
        reverse("generate"),
        {"model": "wan2.6-t2i", "prompt": "Two please", "size": "1280*1280", "n": "2"},
    )
    assert "You have 1 of 1 images left today and this request needs 2" in (
        response.content.decode()
    )
    assert not Job.objects.exists()


def test_viewers_cannot_open_the_form(client, team, viewer):
    client.force_login(viewer)
    assert client.get(reverse("generate")).status_code == 403


def test_the_status_polls_while_open_and_stops_when_finished(pipeline: Pipeline, member, client):
    job = pipeline.submit(
        member, model="wan2.6-t2i", prompt="A boat", parameters={"size": "1280*1280", "n": 1}
    )
    client.force_login(member.user)
    partial = client.get(f"/jobs/{job.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert '<section id="job-status"' in partial and "<html" not in partial
    assert 'hx-trigger="every 1s"' in partial and "Queued" in partial
    pipeline.drive()
    finished = client.get(f"/jobs/{job.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert "hx-trigger" not in finished and "Succeeded" in finished
    assert "<title>Succeeded · Wan 2.6 · Studio</title>" in finished  # the tab says so, by name
    assert f"/jobs/{job.pk}/images/0/thumb" in finished


def test_images_are_served_only_to_the_team_and_only_as_images(pipeline: Pipeline, member, client):
    job = pipeline.submit(
        member, model="wan2.6-t2i", prompt="A boat", parameters={"size": "1280*1280", "n": 1}
    )
    pipeline.drive()
    client.force_login(member.user)
    thumb = client.get(f"/jobs/{job.pk}/images/0/thumb")
    assert thumb.status_code == 200 and thumb["Content-Type"] == "image/webp"
    assert thumb["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in thumb["Content-Security-Policy"]
    original = client.get(f"/jobs/{job.pk}/images/0/original")
    assert original["Content-Type"] == "image/png"
    assert b"".join(original.streaming_content)[:8] == b"\x89PNG\r\n\x1a\n"
    assert client.get(f"/jobs/{job.pk}/images/1/original").status_code == 404
    assert client.get(f"/jobs/{job.pk}/images/0/source").status_code == 404
    outsider = create_membership(
        team=create_team(name="Far", slug="far"), user=create_user(username="far")
    )
    client.force_login(outsider.user)
    assert client.get(f"/jobs/{job.pk}/images/0/thumb").status_code == 404
    assert client.get(f"/media/results/{job.pk}/0.png").status_code == 404


def test_the_author_cancels_a_queued_job_from_its_page(designer_client, member, media):
    from studio.generation.services import create_job

    job = create_job(
        membership=member,
        model="wan2.6-t2i",
        prompt="Never mind",
        parameters={"size": "1280*1280", "n": 1},
    )
    page = designer_client.get(f"/jobs/{job.pk}/").content.decode()
    assert f'action="/jobs/{job.pk}/cancel"' in page
    response = designer_client.post(f"/jobs/{job.pk}/cancel", follow=True)
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELED
    assert "Cancelled. Nothing was charged." in response.content.decode()
    assert designer_client.get(f"/jobs/{job.pk}/cancel").status_code == 405


def test_a_colleague_sees_the_job_but_cannot_cancel_it(client, member, media):
    from studio.generation.services import create_job

    job = create_job(
        membership=member,
        model="wan2.6-t2i",
        prompt="Mine",
        parameters={"size": "1280*1280", "n": 1},
    )
    colleague = create_membership(team=member.team, user=create_user(username="cole"))
    client.force_login(colleague.user)
    assert "/cancel" not in client.get(f"/jobs/{job.pk}/").content.decode()
    assert client.post(f"/jobs/{job.pk}/cancel").status_code == 403
    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED


def test_run_again_and_remix_start_from_a_finished_job(designer_client, member, media):
    from studio.generation.services import cancel_job, create_job

    job = create_job(
        membership=member,
        model="qwen-image-2.0",
        prompt="A neon sign",
        negative_prompt="blur",
        parameters={"size": "1536*2688", "n": 2, "seed": 7},
    )
    cancel_job(job, membership=member)
    response = designer_client.post(f"/jobs/{job.pk}/retry")
    again = Job.objects.exclude(pk=job.pk).get()
    assert response["Location"] == f"/jobs/{again.pk}/"
    assert (again.prompt, again.parameters) == (job.prompt, job.parameters)
    form = designer_client.get(f"/generate/?remix={job.pk}").content.decode()
    assert "A neon sign</textarea>" in form and "blur</textarea>" in form
    assert '<option value="1536*2688" selected>' in form
    assert 'name="seed" value="7"' in form
    stranger = create_membership(
        team=create_team(name="Away", slug="away"), user=create_user(username="away")
    )
    designer_client.force_login(stranger.user)
    assert designer_client.get(f"/generate/?remix={job.pk}").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_fifty_people_clicking_generate_at_once_with_ten_images_left(media):
    """The quota race through the web form: exactly ten jobs, forty clear refusals, and
    not one server error."""
    import threading

    from django.db import connection
    from django.test import Client

    team = create_team(name="Rush", slug="rush")
    team.member_jobs_in_flight = 100
    team.save()
    member = create_membership(team=team, user=create_user(username="rusher"))
    Membership.objects.filter(pk=member.pk).update(images_per_day=10)
    clients = []
    for _ in range(50):
        browser = Client()
        browser.force_login(member.user)
        clients.append(browser)
    start = threading.Barrier(50)
    answers: list[tuple[int, str]] = []

    def click(browser: Client) -> None:
        try:
            start.wait()
            response = browser.post(
                reverse("generate"),
                {"model": "wan2.6-t2i", "prompt": "One of fifty", "size": "1280*1280", "n": "1"},
            )
            answers.append((response.status_code, response.content.decode()))
        finally:
            connection.close()

    threads = [threading.Thread(target=click, args=(browser,)) for browser in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(status for status, _ in answers)
    assert statuses == [200] * 40 + [302] * 10
    refusals = [page for status, page in answers if status == 200]
    assert all("You have 0 of 10 images left today" in page for page in refusals)
    assert Job.objects.count() == 10


def test_a_jobs_model_is_named_as_people_read_it(pipeline: Pipeline, member, client):
    job = pipeline.submit(
        member, model="wan2.6-t2i", prompt="A boat", parameters={"size": "1280*1280", "n": 1}
    )
    client.force_login(member.user)
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert '<h1 class="page-title">Wan 2.6 <span' in page
    assert '<code class="secondary-id">wan2.6-t2i</code>' in page  # the id, beside it
    recent = client.get(reverse("recent-jobs")).content.decode()
    assert "Wan 2.6 ·" in recent and "wan2.6-t2i" not in recent
    home = client.get("/").content.decode()
    assert '<td data-label="Model">Wan 2.6</td>' in home


def test_a_result_opens_its_image_page_not_the_raw_file(pipeline: Pipeline, member, client):
    job = pipeline.submit(
        member, model="wan2.6-t2i", prompt="A boat", parameters={"size": "1280*1280", "n": 1}
    )
    pipeline.drive()
    image = job.images.get()
    client.force_login(member.user)
    for page in (client.get(f"/jobs/{job.pk}/"), client.get(reverse("recent-jobs"))):
        html = page.content.decode()
        assert f'href="/gallery/images/{image.pk}/"' in html
        assert f'href="/jobs/{job.pk}/images/0/original"' not in html


def test_placeholders_say_where_each_open_job_is(designer_client, member):
    """Queued with its place in line; running for so long of what the model usually takes,
    learnt from the tasks that ended; storing once made. The job page says the same."""
    from datetime import timedelta

    from django.utils import timezone

    from tests.support.factories import create_job_row

    now = timezone.now()
    for seconds in (10, 12, 30):  # ended tasks of the model: the median is 12 s
        create_job_row(
            member,
            status=Job.Status.SUCCEEDED,
            provider_started_at=now - timedelta(minutes=5),
            provider_finished_at=now - timedelta(minutes=5) + timedelta(seconds=seconds),
            finished_at=now - timedelta(minutes=4),
        )
    running = create_job_row(
        member,
        status=Job.Status.RUNNING,
        provider_submitted_at=now - timedelta(seconds=9),
        provider_started_at=now - timedelta(seconds=7),
        created_at=now - timedelta(seconds=10),
    )
    first = create_job_row(member, created_at=now - timedelta(seconds=3))
    second = create_job_row(member, created_at=now - timedelta(seconds=2))
    storing = create_job_row(member, status=Job.Status.DOWNLOADING)

    results = designer_client.get(reverse("recent-jobs")).content.decode()
    assert re.search(r"Running · [78] s of about 12 s", results)
    assert "Next in line" in results and "2nd in line" in results
    assert "Made · storing the images" in results
    assert results.count('data-tile="waiting"') == 4

    page = designer_client.get(reverse("job-detail", args=[running.pk])).content.decode()
    assert re.search(r"<dd data-live>Running · [78] s of about 12 s</dd>", page)
    assert "Next in line" in first.live_note() and second.live_note() == "2nd in line"
    assert storing.live_note() == "Made · storing the images"


def test_a_model_with_no_ended_task_yet_says_only_how_long_it_has_run(member):
    from datetime import timedelta

    from django.utils import timezone

    from studio.generation.models import ordinal
    from tests.support.factories import create_job_row

    now = timezone.now()
    job = create_job_row(member, status=Job.Status.RUNNING, provider_started_at=now)
    assert job.live_note(now + timedelta(seconds=4)) == "Running · 4 s"
    job.usual_seconds = 3.2  # what the model's ended tasks took
    assert job.live_note(now + timedelta(seconds=2)) == "Running · 2 s of about 3 s"
    assert job.live_note(now + timedelta(seconds=4)) == "Running · 4 s, longer than the usual 3 s"
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 111)] == [
        "1st",
        "2nd",
        "3rd",
        "4th",
        "11th",
        "12th",
        "13th",
        "21st",
        "22nd",
        "111th",
    ]


def test_the_job_pages_history_sits_behind_details_and_follows_each_poll(designer_client, member):
    from tests.support.factories import create_job_row

    job = create_job_row(member)
    job.events.create(
        status=Job.Status.QUEUED, message="Queued for wan2.6-t2i.", request_id="req-1"
    )
    page = designer_client.get(reverse("job-detail", args=[job.pk])).content.decode()
    details = page[page.index('<details class="job-details">') :]
    assert "req-1" in details and page.count("req-1") == 1
    polled = designer_client.get(
        reverse("job-detail", args=[job.pk]), HTTP_HX_REQUEST="true"
    ).content.decode()
    assert '<div id="job-history" hx-swap-oob="true">' in polled and "req-1" in polled
    assert "<details" not in polled  # the disclosure stays as the designer left it
    assert 'hx-vals=\'{"seen": "1"}\'' in polled
    # Nothing new since: the table being read is left alone.
    unchanged = designer_client.get(
        reverse("job-detail", args=[job.pk]), {"seen": "1"}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert 'id="job-history"' not in unchanged and 'id="job-status"' in unchanged


def test_results_say_just_now_for_a_job_sent_under_a_minute_ago(designer_client, member):
    """Not "0 minutes ago": the job the designer just sent was sent just now."""
    from datetime import timedelta

    from django.utils import timezone

    from tests.support.factories import create_job_row

    now = timezone.now()
    fresh = create_job_row(member, prompt="Fresh", created_at=now - timedelta(seconds=20))
    older = create_job_row(member, prompt="Older", created_at=now - timedelta(minutes=3))
    assert fresh.age_text == "just now"
    assert older.age_text == "3\xa0minutes ago"
    results = designer_client.get(reverse("recent-jobs")).content.decode()
    assert "· just now</span>" in results and "3\xa0minutes ago" in results
    assert "0\xa0minutes ago" not in results


def test_a_finished_jobs_page_offers_variations_beside_run_again(designer_client, member):
    from tests.support.factories import create_job_row

    done = create_job_row(member, status=Job.Status.SUCCEEDED)
    page = designer_client.get(reverse("job-detail", args=[done.pk])).content.decode()
    assert f'action="{reverse("job-variations", args=[done.pk])}"' in page
    assert 'title="The same request again, its seed included">Run again' in page
    still_open = create_job_row(member)
    page = designer_client.get(reverse("job-detail", args=[still_open.pk])).content.decode()
    assert (
        "job-variations" not in page and reverse("job-variations", args=[still_open.pk]) not in page
    )


def test_the_job_page_shows_the_palette_it_asked_for(designer_client, member):
    from tests.support.factories import create_job_row

    palette = [
        {"hex": "#1F6FEB", "ratio": "40.00%"},
        {"hex": "#F5F1E8", "ratio": "35.00%"},
        {"hex": "#222222", "ratio": "25.00%"},
    ]
    job = create_job_row(
        member,
        model="wan2.7-image-pro",
        parameters={"size": "1K", "n": 1, "color_palette": palette},
    )
    page = designer_client.get(reverse("job-detail", args=[job.pk])).content.decode()
    assert "Colour palette" in page
    for colour in palette:
        assert f"<code>{colour['hex']}</code> {colour['ratio']}" in page
