"""The team gallery: what each member sees and may do, filters, pages and review."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from studio.accounts.models import Membership
from studio.audit.models import Activity, Entry
from studio.gallery.forms import PAGE_SIZE
from studio.gallery.models import Board, Star
from studio.generation.models import GeneratedImage, Job
from tests.support.factories import (
    create_generated_image,
    create_membership,
    create_team,
    create_user,
    named_patterns,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(db):
    team = create_team(name="Pixel Works", slug="pixel")
    roles = {}
    for name, role in (
        ("owner", Membership.Role.OWNER),
        ("reviewer", Membership.Role.REVIEWER),
        ("designer", Membership.Role.DESIGNER),
        ("viewer", Membership.Role.VIEWER),
    ):
        roles[name] = create_membership(team=team, user=create_user(username=name), role=role)
    other = create_team(name="Elsewhere", slug="elsewhere")
    roles["outsider"] = create_membership(
        team=other, user=create_user(username="outsider"), role=Membership.Role.OWNER
    )
    return roles


def ids_on(page: str) -> list[int]:
    import re

    return [int(i) for i in re.findall(r'data-image="(\d+)"', page)]


def test_the_gallery_shows_the_teams_images_newest_first_and_nobody_elses(client, people):
    now = timezone.now()
    old = create_generated_image(people["designer"], at=now - timedelta(hours=2))
    new = create_generated_image(people["owner"], at=now)
    create_generated_image(people["outsider"], prompt="Not yours")
    client.force_login(people["viewer"].user)
    page = client.get(reverse("gallery")).content.decode()
    assert ids_on(page) == [new.pk, old.pk]
    assert "Not yours" not in page
    assert f"/jobs/{new.job_id}/images/0/thumb" in page  # thumbnails, never originals
    assert "/original" not in page


def test_filters_and_search_narrow_the_grid(client, people):
    designer, owner = people["designer"], people["owner"]
    now = timezone.now()
    chair = create_generated_image(
        designer, prompt="A red chair by the window", at=now - timedelta(days=3)
    )
    lamp = create_generated_image(
        owner, prompt="A brass lamp", model="wan2.7-image-pro", kind=Job.Kind.EDIT
    )
    sofa = create_generated_image(designer, prompt="A red sofa", model="qwen-image-max")
    GeneratedImage.objects.filter(pk=sofa.pk).update(review_state="approved")
    Star.objects.create(user=designer.user, image=lamp)
    client.force_login(designer.user)

    def grid(**params) -> set[int]:
        return set(ids_on(client.get(reverse("gallery"), params).content.decode()))

    assert grid(q="red") == {chair.pk, sofa.pk}
    assert grid(q="red window") == {chair.pk}
    assert grid(author=owner.user.pk) == {lamp.pk}
    assert grid(model="qwen-image-max") == {sofa.pk}
    assert grid(kind="edit") == {lamp.pk}
    assert grid(state="approved") == {sofa.pk}
    assert grid(starred="on") == {lamp.pk}
    assert grid(since=(now - timedelta(days=1)).date().isoformat()) == {lamp.pk, sofa.pk}
    assert grid(until=(now - timedelta(days=2)).date().isoformat()) == {chair.pk}
    # A value that is not valid (a deleted board in an old link) is left out on its own.
    assert grid(q="red", board=987654) == {chair.pk, sofa.pk}
    assert grid(model="qwen-image-max", since="not a date") == {sofa.pk}


def test_the_filters_show_what_was_chosen_and_names_as_text(client, people):
    from studio.gallery.models import Board

    designer = people["designer"]
    board = Board.objects.create(
        team=designer.team, name="<b>Mood & tone</b>", created_by=designer.user
    )
    client.force_login(designer.user)
    page = client.get(reverse("gallery"), {"board": board.pk, "model": "wan2.6-t2i"})
    html = page.content.decode()
    assert (
        f'<option value="{board.pk}" selected>&lt;b&gt;Mood &amp; tone&lt;/b&gt;</option>' in html
    )
    assert '<option value="wan2.6-t2i" selected>' in html
    assert '<select name="author" id="id_author"><option value="" selected>Anyone</option>' in html


def test_pages_read_on_from_a_cursor_with_the_same_queries(client, people):
    designer = people["designer"]
    now = timezone.now()
    made = [
        create_generated_image(designer, at=now - timedelta(seconds=i))
        for i in range(PAGE_SIZE * 3)
    ]
    client.force_login(designer.user)
    seen: list[int] = []
    url = reverse("gallery")
    counts = []
    while url:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        counts.append(len(queries))
        page = response.content.decode()
        seen += ids_on(page)
        import re

        more = re.search(r"<a href=\"(/gallery/\?after=[^\"]+)\"[^>]*>More images", page)
        url = more[1].replace("&amp;", "&") if more else ""
    assert seen == [image.pk for image in made]  # every image once, in order
    assert len(set(counts)) == 1 and counts[0] <= 10, counts


def test_reviewers_set_review_states_and_the_feed_says_so(client, people):
    image = create_generated_image(people["designer"])
    client.force_login(people["reviewer"].user)
    response = client.post(
        reverse("gallery-review", args=[image.pk]),
        {"state": "approved"},
        HTTP_HX_REQUEST="true",
        HTTP_HX_CURRENT_URL="http://testserver/gallery/?q=chair",
    )
    answer = response.content.decode()
    assert response["HX-Trigger"] == "activity-changed"
    # Made in the viewer over the grid: the card's badge follows.
    assert f'id="badge-{image.pk}" hx-swap-oob="true"' in answer and "Approved" in answer
    image.refresh_from_db()
    assert image.review_state == "approved" and image.reviewed_by == people["reviewer"].user
    item = Activity.objects.get(verb=Activity.Verb.REVIEWED)
    assert (item.actor, item.detail) == (people["reviewer"].user, "Approved")
    feed = client.get(reverse("gallery-activity")).content.decode()
    assert "reviewer</strong> set the review state of" in feed

    client.force_login(people["designer"].user)
    denied = client.post(reverse("gallery-review", args=[image.pk]), {"state": "rejected"})
    assert denied.status_code == 403
    image.refresh_from_db()
    assert image.review_state == "approved"


def test_a_review_records_the_state_it_replaced_and_skips_what_was_trashed_meanwhile(people, rf):
    from studio.gallery.services import set_review_state as _set_state

    first, second = (create_generated_image(people["designer"]) for _ in range(2))
    # Read by one reviewer's page; before the click lands, a colleague approves the first
    # and an owner trashes the second.
    seen = list(GeneratedImage.objects.filter(pk__in=[first.pk, second.pk]).order_by("pk"))
    GeneratedImage.objects.filter(pk=first.pk).update(review_state="approved")
    GeneratedImage.objects.filter(pk=second.pk).update(deleted_at=timezone.now())

    request = rf.post("/")
    request.user = people["reviewer"].user
    _set_state(seen, "rejected", request)

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.review_state, second.review_state) == ("rejected", "in_review")
    (audited,) = Entry.objects.filter(action=Entry.Action.REVIEW)
    assert audited.changes == {"review_state": ["approved", "rejected"]}
    assert Activity.objects.filter(verb=Activity.Verb.REVIEWED).count() == 1


def test_pages_that_answer_htmx_with_a_part_name_its_headers_in_vary(client, people):
    image = create_generated_image(people["designer"])
    client.force_login(people["designer"].user)
    for url in (
        reverse("gallery"),
        reverse("gallery-image", args=[image.pk]),
        reverse("gallery-activity"),
        reverse("generate"),
        reverse("edit"),
        reverse("job-detail", args=[image.job_id]),
    ):
        vary = client.get(url)["Vary"]
        assert "HX-Request" in vary and "HX-Target" in vary, url


def test_stars_toggle_for_designers_and_not_for_viewers(client, people):
    image = create_generated_image(people["owner"])
    client.force_login(people["designer"].user)
    client.post(reverse("gallery-star", args=[image.pk]))
    assert Star.objects.filter(image=image, user=people["designer"].user).exists()
    client.post(reverse("gallery-star", args=[image.pk]))
    assert not Star.objects.exists()
    client.force_login(people["viewer"].user)
    assert client.post(reverse("gallery-star", args=[image.pk])).status_code == 403


def test_a_finished_job_appears_in_the_feed(pipeline, member):
    pipeline.submit(
        member, model="wan2.6-t2i", prompt="A vase", parameters={"size": "1280*1280", "n": 2}
    )
    pipeline.drive()
    item = Activity.objects.get(verb=Activity.Verb.GENERATED)
    assert item.detail == "2 images with wan2.6-t2i" and item.actor == member.user
    assert GeneratedImage.objects.filter(team=member.team).count() == 2


def test_the_image_panel_shows_everything_that_made_the_image(client, people):
    now = timezone.now()
    older = create_generated_image(
        people["designer"], prompt="first", at=now - timedelta(minutes=1)
    )
    image = create_generated_image(people["designer"], prompt="A teapot, studio light", at=now)
    image.job.parameters |= {"prompt_extend": True, "watermark": False}
    image.job.save()
    client.force_login(people["viewer"].user)
    page = client.get(reverse("gallery-image", args=[image.pk])).content.decode()
    assert "A teapot, studio light" in page and "wan2.6-t2i" in page
    # The settings by the names the form gave them.
    assert "<dt>Size</dt><dd>1280×1280</dd>" in page and "<dt>Images</dt><dd>1</dd>" in page
    assert "<dt>Improve my prompt</dt><dd>yes</dd>" in page
    assert "<dt>Watermark</dt><dd>no</dd>" in page
    assert f'data-nav="older" href="/gallery/images/{older.pk}/"' in page
    assert "?download=1" in page
    assert "gallery-review" not in page and 'name="state"' not in page  # viewers read only
    panel = client.get(
        reverse("gallery-image", args=[image.pk]), HTTP_HX_REQUEST="true"
    ).content.decode()
    assert panel.lstrip().startswith("<article") and "<html" not in panel


def test_the_panel_says_seed_and_cost_and_offers_variations_and_compare(client, people, media):
    from decimal import Decimal

    from studio.accounts.models import ModelPrice
    from studio.generation.models import JobInput, QuotaCharge

    image = create_generated_image(people["designer"], prompt="A teapot")
    client.force_login(people["designer"].user)
    page = client.get(reverse("gallery-image", args=[image.pk])).content.decode()
    assert '<dd data-fact="seed"><span class="muted">not recorded</span></dd>' in page
    assert '<dd data-fact="cost">no price set</dd>' in page
    assert reverse("job-variations", args=[image.job.pk]) in page
    assert "Compare with inputs" not in page  # made from a prompt alone

    # The price the job was charged at, not today's.
    ModelPrice.objects.create(model="wan2.6-t2i", price_per_image=Decimal("0.05"))
    QuotaCharge.objects.create(
        job=image.job, kind=QuotaCharge.Kind.SETTLE, images=1, unit_price=Decimal("0.035")
    )
    image.job.parameters |= {"seed": 4242}
    image.job.save()
    JobInput.objects.create(
        job=image.job, position=1, mime="image/png", width=1280, height=1280, bytes=1, sha256=""
    )
    page = client.get(reverse("gallery-image", args=[image.pk])).content.decode()
    assert '<dd data-fact="seed">4242</dd>' in page
    assert '<dd data-fact="cost">0.035 USD</dd>' in page
    assert "<dt>Seed</dt>" in page and page.count("<dt>Seed</dt>") == 1
    assert reverse("gallery-compare-inputs", args=[image.pk]) in page

    compare = client.get(reverse("gallery-compare-inputs", args=[image.pk])).content.decode()
    assert 'data-compare="result"' in compare and 'data-compare="input-1"' in compare
    assert "data-compare-slider" in compare  # the input has the result's shape
    plain = create_generated_image(people["designer"])
    assert client.get(reverse("gallery-compare-inputs", args=[plain.pk])).status_code == 404


def test_variations_from_the_viewer_say_where_the_new_job_is(client, people, media):
    image = create_generated_image(people["owner"], prompt="A teapot")
    job = image.job
    job.parameters = {"size": "1280*1280", "n": 1, "seed": 5}
    job.save()
    url = reverse("job-variations", args=[job.pk])
    client.force_login(people["designer"].user)
    answer = client.post(url, HTTP_HX_REQUEST="true")
    made = Job.objects.exclude(pk=job.pk).get()
    assert (made.prompt, made.model, made.author) == (
        "A teapot",
        job.model,
        people["designer"].user,
    )
    assert made.parameters["seed"] != 5
    assert "Variations queued" in answer.content.decode()
    assert reverse("job-detail", args=[made.pk]) in answer.content.decode()
    assert Entry.objects.filter(action=Entry.Action.GENERATE, target=str(made)).exists()
    # Without JavaScript: to the new job's page.
    again = client.post(url)
    assert again.status_code == 302 and again["Location"].startswith("/jobs/")

    # Refused: said where she is, nothing made.
    Membership.objects.filter(pk=people["designer"].pk).update(images_per_day=2)
    refused = client.post(url, HTTP_HX_REQUEST="true")
    assert refused.status_code == 200 and "images left today" in refused.content.decode()
    assert Job.objects.count() == 3
    back = reverse("gallery-image", args=[image.pk])
    plain = client.post(url, {"next": back})
    assert plain.status_code == 302 and plain["Location"] == back

    client.force_login(people["viewer"].user)
    assert client.post(url, HTTP_HX_REQUEST="true").status_code == 403


# -- Every gallery URL, as every kind of visitor ------------------------------------------

# Who may use each URL: "member" (any role reads), or the least role that may act.
RULES = {
    "gallery": ("GET", "viewer"),
    "gallery-activity": ("GET", "viewer"),
    "gallery-compare": ("GET", "viewer"),
    "gallery-bulk": ("POST", "viewer"),  # a zip of the selection: reading
    "gallery-board-create": ("POST", "designer"),
    "gallery-board-add": ("POST", "designer"),
    "gallery-trash": ("GET", "owner"),
    "gallery-comment": ("POST", "designer"),
    "gallery-board": ("POST", "designer"),
    "gallery-delete": ("POST", "owner"),
    "gallery-restore": ("POST", "owner"),
    "gallery-image": ("GET", "viewer"),
    "gallery-compare-inputs": ("GET", "viewer"),
    "gallery-review": ("POST", "reviewer"),
    "gallery-review-request": ("POST", "designer"),  # any member who comments may ask
    "gallery-star": ("POST", "designer"),
    "job-detail": ("GET", "viewer"),
    "job-image": ("GET", "viewer"),
    "job-input": ("GET", "viewer"),
    "use-as-input": ("POST", "designer"),
    "job-cancel": ("POST", "author"),
    "job-retry": ("POST", "author"),
    "job-variations": ("POST", "designer"),
    "exploration-vote": ("POST", "viewer"),
    "exploration-winner": ("POST", "reviewer"),
}
RANK = {"viewer": 0, "designer": 1, "reviewer": 2, "owner": 3}
# Pages of the caller's own team (not of one image): an outsider reaches them, and finds
# nothing of this team there.
TEAM_PAGES = {
    "gallery",
    "gallery-activity",
    "gallery-compare",
    "gallery-bulk",
    "gallery-board-create",
    "gallery-trash",
}


def test_every_image_url_has_a_permission_rule():
    names = {
        name
        for name, pattern in named_patterns().items()
        if name.startswith(("gallery", "job-"))
        or "image_id" in str(pattern.pattern)
        or "job_id" in str(pattern.pattern)
    }
    assert names <= set(RULES), f"URLs without a rule here: {sorted(names - set(RULES))}"


@pytest.mark.parametrize("name", sorted(RULES))
@pytest.mark.parametrize("who", ["anonymous", "outsider", "viewer", "designer", "reviewer"])
def test_each_url_answers_each_role_as_the_rules_say(client, people, media, name, who):
    import io

    from django.core.files.base import ContentFile
    from PIL import Image

    image = create_generated_image(people["owner"])
    png = io.BytesIO()
    Image.new("RGB", (8, 8)).save(png, format="PNG")
    image.image.save("x.png", ContentFile(png.getvalue()), save=False)
    webp = io.BytesIO()
    Image.new("RGB", (8, 8)).save(webp, format="WEBP")
    image.thumbnail.save("x.webp", ContentFile(webp.getvalue()), save=False)
    image.save()
    job = image.job
    from studio.generation.models import JobInput

    item = JobInput(job=job, position=1, mime="image/png", width=8, height=8, bytes=1, sha256="")
    item.image.save("1.png", ContentFile(png.getvalue()), save=False)
    item.save()

    board = Board.objects.create(team=image.team, name="Picks")
    from studio.generation.models import Exploration, ExplorationCell

    exploration = Exploration.objects.create(
        team=image.team,
        author=job.author,
        prompt=job.prompt,
        shape="1:1",
        model_names=[job.model],
        seeds=[1],
    )
    ExplorationCell.objects.create(exploration=exploration, job=job, row=0, column=0)
    kwargs = {
        "exploration_id": exploration.pk,
        "board_id": board.pk,
        "image_id": image.pk,
        "job_id": job.pk,
        "index": 0,
        "variant": "thumb",
        "position": 1,
    }
    pattern = named_patterns()[name]
    wanted = {k: v for k, v in kwargs.items() if k in pattern.pattern.converters}
    url = reverse(name, kwargs=wanted)
    method, least = RULES[name]
    if who != "anonymous":
        client.force_login(people[who].user)
    second = create_generated_image(people["designer"])
    data = {
        "gallery-review": {"state": "approved"},
        "gallery-comment": {"body": "Looks good"},
        "gallery-bulk": {"action": "zip", "image": [image.pk, second.pk]},
        "gallery-board-create": {"name": "Picks", "image": [image.pk]},
        "gallery-board-add": {"image": [image.pk]},
        "gallery-compare": {"image": [image.pk, second.pk]},
    }.get(name, {})
    response = client.post(url, data) if method == "POST" else client.get(url, data)
    status = response.status_code
    if who == "anonymous":
        assert status == 302 and "/accounts/login/" in response["Location"], (name, status)
    elif who == "outsider":
        # Another team's image, job or file does not exist for them; their own team's
        # pages show nothing of this team.
        if name in TEAM_PAGES:
            # Pages of their own team answer; what needs this team's images finds none of
            # them and goes back to the gallery.
            expected = 200 if name in ("gallery", "gallery-activity", "gallery-trash") else 302
            assert status == expected, (name, who, status)
            assert response.get("Content-Type") != "application/zip"
            assert f'data-image="{image.pk}"' not in response.content.decode()
            assert not image.boards.exists()
        else:
            assert status == 404, (name, who, status)
    elif least == "author":
        assert status == 403, (name, who, status)  # the owner wrote the job, not them
    elif RANK[who] >= RANK[least]:
        # Pages answer; actions done without htmx go back where they came from. The zip
        # of a selection is the answer itself.
        expected = 200 if method == "GET" or name == "gallery-bulk" else 302
        assert status == expected, (name, who, status)
    else:
        assert status == 403, (name, who, status)


# -- Comments, boards, compare, the selection and the trash --------------------------------


def test_a_comment_can_be_pinned_to_an_area_and_mention_a_colleague(client, people):
    image = create_generated_image(people["owner"])
    client.force_login(people["designer"].user)
    response = client.post(
        reverse("gallery-comment", args=[image.pk]),
        {"body": "@reviewer the handle looks off here", "box": "128,256,640,768"},
        HTTP_HX_REQUEST="true",
    )
    answer = response.content.decode()
    from studio.gallery.models import Comment

    comment = Comment.objects.get()
    assert comment.box == [128, 256, 640, 768]
    assert list(comment.mentions.values_list("username", flat=True)) == ["reviewer"]
    # The pin is drawn over the image in its percentages, and sent with the new comments.
    assert "left: 10.0%; top: 20.0%; width: 40.0%; height: 40.0%" in answer
    assert f'id="pins-{image.pk}" class="pins" hx-swap-oob="true"' in answer
    assert Activity.objects.filter(verb=Activity.Verb.COMMENTED).exists()
    page = client.get(reverse("gallery-image", args=[image.pk])).content.decode()
    assert 'data-pin="1"' in page
    assert '<mark class="mention">@reviewer</mark> the handle looks off here' in page
    client.force_login(people["reviewer"].user)
    mentions = client.get(reverse("gallery"), {"mentioned": "on"}).content.decode()
    assert ids_on(mentions) == [image.pk]


def test_a_mention_at_the_end_of_a_sentence_names_the_colleague(client, people):
    image = create_generated_image(people["owner"])
    client.force_login(people["designer"].user)
    body = "Looks good, @reviewer. Ask @owner-, not @nobody."
    client.post(reverse("gallery-comment", args=[image.pk]), {"body": body})
    from studio.gallery.models import Comment

    mentioned = Comment.objects.get().mentions.values_list("username", flat=True)
    assert sorted(mentioned) == ["owner", "reviewer"]
    page = client.get(reverse("gallery-image", args=[image.pk])).content.decode()
    assert '<mark class="mention">@reviewer</mark>.' in page


@pytest.mark.parametrize(
    ("box", "words"),
    [("1,2,3", "four whole numbers"), ("0,0,2000,10", "inside the 1280×1280 image")],
)
def test_a_pin_outside_the_image_is_refused_and_the_text_kept(client, people, box, words):
    image = create_generated_image(people["owner"])
    client.force_login(people["designer"].user)
    answer = client.post(
        reverse("gallery-comment", args=[image.pk]),
        {"body": "Here", "box": box},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert words in answer and ">Here</textarea>" in answer
    assert not image.comments.exists()


def test_boards_collect_images_and_filter_the_grid(client, people):
    designer = people["designer"]
    first, second, third = (create_generated_image(designer) for _ in range(3))
    client.force_login(designer.user)
    client.post(reverse("gallery-board-create"), {"name": " Spring  picks ", "image": [first.pk]})
    from studio.gallery.models import Board

    board = Board.objects.get()
    assert board.name == "Spring picks"
    client.post(
        reverse("gallery-bulk"),
        {"action": "board", "board": board.pk, "image": [first.pk, second.pk]},
    )
    client.post(reverse("gallery-board", args=[third.pk]), {"board": board.pk})
    client.post(reverse("gallery-board", args=[first.pk]), {"board": board.pk, "take_off": "1"})
    with CaptureQueriesContext(connection) as queries:
        page = client.get(reverse("gallery"), {"board": board.pk}).content.decode()
    assert set(ids_on(page)) == {second.pk, third.pk}
    # The filter's select and the selection bar list the same boards, read once.
    assert f'<option value="{board.pk}" selected>Spring picks</option>' in page
    assert f'<option value="{board.pk}">Spring picks</option>' in page
    assert sum('FROM "gallery_board"' in q["sql"] for q in queries.captured_queries) == 1
    # Another team's board is neither offered nor taken as a filter.
    theirs = Board.objects.create(team=people["outsider"].team, name="Their picks")
    page = client.get(reverse("gallery"), {"board": theirs.pk}).content.decode()
    assert "Their picks" not in page
    assert f'<option value="{theirs.pk}"' not in page.partition('name="board"')[2]


def test_compare_shows_both_originals(client, people):
    first, second = (
        create_generated_image(people["owner"]),
        create_generated_image(people["designer"]),
    )
    client.force_login(people["viewer"].user)
    page = client.post(reverse("gallery-compare"), {"image": [first.pk, second.pk]})
    html = page.content.decode()
    assert f"/jobs/{first.job_id}/images/0/original" in html
    assert f"/jobs/{second.job_id}/images/0/original" in html
    assert f"?image={first.pk}&amp;image={second.pk}" in html  # a link to share


def test_a_zip_of_the_selection_holds_the_originals_and_a_manifest(
    client, people, media, monkeypatch
):
    import io
    import json
    import zipfile

    from django.core.files.base import ContentFile

    images = []
    for n in range(3):
        image = create_generated_image(people["designer"], prompt=f"Vase {n}")
        image.image.save(f"{n}.png", ContentFile(f"png-{n}".encode()), save=True)
        images.append(image)
    client.force_login(people["viewer"].user)
    # Held in memory up to a size, then on disk: here it goes to disk after 100 bytes.
    monkeypatch.setattr("studio.gallery.export.ZIP_IN_MEMORY_BYTES", 100)
    response = client.post(
        reverse("gallery-bulk"), {"action": "zip", "image": [i.pk for i in images]}
    )
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].startswith('attachment; filename="pixel-')
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    manifest = json.loads(archive.read("manifest.json"))
    assert [m["prompt"] for m in manifest] == ["Vase 0", "Vase 1", "Vase 2"]
    assert [archive.read(m["file"]) for m in manifest] == [b"png-0", b"png-1", b"png-2"]
    assert manifest[0]["parameters"] == {"size": "1280*1280", "n": 1}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("image", "²"),
        ("image", "٣"),
        ("image", "9" * 25),  # more than the database's integers hold
        ("board", "abc"),
        ("board", "²"),
        ("board", "9" * 25),
    ],
)
def test_ids_that_are_not_numbers_are_ignored_not_an_error(client, people, field, value):
    image = create_generated_image(people["designer"])
    client.force_login(people["designer"].user)
    ids = [str(image.pk), value] if field == "image" else [str(image.pk)]
    data = {"action": "board", "image": ids, "board": value if field == "board" else ""}
    assert client.post(reverse("gallery-bulk"), data).status_code == 302
    single = client.post(reverse("gallery-board", args=[image.pk]), {"board": value})
    assert single.status_code == 302
    compare = client.get(reverse("gallery-compare"), {"image": ids})
    assert compare.status_code in (200, 302)


def test_bulk_review_needs_a_reviewer(client, people):
    images = [create_generated_image(people["designer"]) for _ in range(2)]
    ids = [i.pk for i in images]
    client.force_login(people["designer"].user)
    assert (
        client.post(
            reverse("gallery-bulk"), {"action": "state", "state": "approved", "image": ids}
        ).status_code
        == 403
    )
    client.force_login(people["reviewer"].user)
    client.post(reverse("gallery-bulk"), {"action": "state", "state": "approved", "image": ids})
    assert set(GeneratedImage.objects.values_list("review_state", flat=True)) == {"approved"}
    assert Activity.objects.filter(verb=Activity.Verb.REVIEWED).count() == 2
    assert Entry.objects.filter(action=Entry.Action.REVIEW).count() == 2


@pytest.mark.parametrize("action", ["state", "delete"])
def test_a_bulk_action_costs_the_same_for_forty_images_as_for_two(client, people, action):
    """A selection is written in a few statements, not a few per image."""

    def run(count: int) -> int:
        ids = [create_generated_image(people["designer"]).pk for _ in range(count)]
        with CaptureQueriesContext(connection) as queries:
            client.post(
                reverse("gallery-bulk"), {"action": action, "state": "approved", "image": ids}
            )
        return len(queries)

    client.force_login(people["owner"].user)
    assert run(40) == run(2)
    verb = Activity.Verb.REVIEWED if action == "state" else Activity.Verb.DELETED
    assert Activity.objects.filter(verb=verb).count() == 42
    audited = Entry.Action.REVIEW if action == "state" else Entry.Action.DELETE
    assert Entry.objects.filter(action=audited).count() == 42


def test_the_trash_hides_images_and_owners_restore_them_within_thirty_days(client, people, media):
    image = create_generated_image(people["designer"])
    client.force_login(people["reviewer"].user)
    assert client.post(reverse("gallery-delete", args=[image.pk])).status_code == 403
    client.force_login(people["owner"].user)
    client.post(reverse("gallery-delete", args=[image.pk]))
    assert ids_on(client.get(reverse("gallery")).content.decode()) == []
    client.force_login(people["designer"].user)
    assert client.get(reverse("gallery-image", args=[image.pk])).status_code == 404
    client.force_login(people["owner"].user)
    assert f'data-image="{image.pk}"' in client.get(reverse("gallery-trash")).content.decode()
    client.post(reverse("gallery-restore", args=[image.pk]))
    assert ids_on(client.get(reverse("gallery")).content.decode()) == [image.pk]

    client.post(reverse("gallery-delete", args=[image.pk]))
    assert GeneratedImage.purge_trash(timezone.now() + timedelta(days=29)) == 0
    assert GeneratedImage.purge_trash(timezone.now() + timedelta(days=31)) == 1
    assert not GeneratedImage.objects.filter(pk=image.pk).exists()


def test_a_trashed_image_is_gone_from_every_page_but_the_owners_trash(client, people, media):
    from django.core.files.base import ContentFile

    image = create_generated_image(people["designer"])
    image.thumbnail.save("0.webp", ContentFile(b"webp"), save=True)
    job = image.job
    original = reverse("job-image", args=[job.pk, image.index, "original"])
    thumb = reverse("job-image", args=[job.pk, image.index, "thumb"])
    client.force_login(people["owner"].user)
    client.post(reverse("gallery-delete", args=[image.pk]))

    for who in ("viewer", "designer", "reviewer"):
        client.force_login(people[who].user)
        assert client.get(f"{original}?download=1").status_code == 404
        assert client.get(thumb).status_code == 404
        assert thumb not in client.get(reverse("job-detail", args=[job.pk])).content.decode()
        assert thumb not in client.get(reverse("gallery-activity")).content.decode()
    client.force_login(people["designer"].user)
    assert thumb not in client.get(reverse("generate")).content.decode()  # recent jobs
    reuse = reverse("use-as-input", args=[job.pk, image.index])
    assert client.post(reuse).status_code == 404

    client.force_login(people["owner"].user)
    assert client.get(thumb).status_code == 200  # the trash page shows it
    assert thumb in client.get(reverse("gallery-trash")).content.decode()


def test_the_selection_never_redirects_elsewhere(client, people):
    image = create_generated_image(people["designer"])
    client.force_login(people["reviewer"].user)
    response = client.post(
        reverse("gallery-bulk"),
        {
            "action": "state",
            "state": "rejected",
            "image": [image.pk],
            "next": "https://evil.example/",
        },
    )
    assert response["Location"] == reverse("gallery")


def test_compare_takes_two_to_four_and_says_what_it_could_not_show(client, people):
    images = [create_generated_image(people["designer"], prompt=f"Vase {n}") for n in range(5)]
    ids = [image.pk for image in images]
    client.force_login(people["viewer"].user)
    page = client.post(reverse("gallery-compare"), {"image": ids[:3]}).content.decode()
    for image in images[:3]:
        assert f"/jobs/{image.job_id}/images/0/original" in page
    assert 'data-compare="c"' in page and 'data-compare="d"' not in page
    assert "?image={}&amp;image={}&amp;image={}".format(*ids[:3]) in page
    page = client.get(reverse("gallery-compare"), {"image": ids[:4]}).content.decode()
    assert 'data-compare="d"' in page

    # Five: none is dropped quietly; the selection goes back to where it was made.
    five = client.post(
        reverse("gallery-compare"), {"image": ids, "next": "/gallery/?q=vase"}, follow=True
    )
    assert five.redirect_chain == [("/gallery/?q=vase", 302)]
    assert "Compare takes up to 4 images and 5 were selected" in five.content.decode()
    # One trashed since it was ticked: the others are compared, and the page says so.
    GeneratedImage.objects.filter(pk=ids[2]).update(deleted_at=timezone.now())
    three = client.post(reverse("gallery-compare"), {"image": ids[:3]}, follow=True)
    html = three.content.decode()
    assert "One of the selected images is no longer in the gallery." in html
    assert 'data-compare="b"' in html and 'data-compare="c"' not in html
    alone = client.post(reverse("gallery-compare"), {"image": ids[2:4]}, follow=True)
    assert "Select two to four images to compare. One of the selected" in alone.content.decode()


def test_the_slider_is_for_two_images_of_the_same_shape(client, people):
    first, second, wide = (create_generated_image(people["designer"]) for _ in range(3))
    GeneratedImage.objects.filter(pk=second.pk).update(width=1024, height=1024)
    GeneratedImage.objects.filter(pk=wide.pk).update(width=1280, height=720)
    client.force_login(people["viewer"].user)
    same = client.get(reverse("gallery-compare"), {"image": [first.pk, second.pk]})
    assert "data-compare-slider" in same.content.decode()
    shapes = client.get(reverse("gallery-compare"), {"image": [first.pk, wide.pk]})
    html = shapes.content.decode()
    assert "data-compare-slider" not in html
    assert "needs two images of the same shape; A is 1280×1280 and B 1280×720" in html


def test_a_review_made_on_the_compare_page_stays_there(client, people):
    first, second = (create_generated_image(people["designer"]) for _ in range(2))
    client.force_login(people["reviewer"].user)
    link = f"/gallery/compare/?image={first.pk}&image={second.pk}"
    page = client.get(link).content.decode()
    assert f'<input type="hidden" name="next" value="/gallery/compare/?image={first.pk}' in page
    # Without JavaScript, back to the comparison; never to another site.
    plain = client.post(
        reverse("gallery-review", args=[first.pk]), {"state": "approved", "next": link}
    )
    assert plain["Location"] == link
    elsewhere = client.post(
        reverse("gallery-review", args=[first.pk]),
        {"state": "rejected", "next": "https://evil.example/"},
    )
    assert elsewhere["Location"] == reverse("gallery-image", args=[first.pk])
    # With htmx: no part for a grid card that is not on the compare page.
    answer = client.post(
        reverse("gallery-review", args=[second.pk]),
        {"state": "approved", "next": link},
        HTTP_HX_REQUEST="true",
        HTTP_HX_CURRENT_URL=f"http://testserver{link}",
    ).content.decode()
    assert f'id="review-{second.pk}"' in answer and "hx-swap-oob" not in answer
    assert f'name="next" value="{link.replace("&", "&amp;")}"' in answer


def test_the_grid_and_the_feed_name_models_as_people_read_them(client, people):
    image = create_generated_image(people["designer"], model="wan2.6-t2i")
    Activity.job_finished(image.job, [image.pk])
    gone = create_generated_image(people["designer"], model="wan2.0-retired")
    client.force_login(people["viewer"].user)
    page = client.get(reverse("gallery")).content.decode()
    assert '·</span> <span title="wan2.6-t2i">Wan 2.6</span>' in page
    assert "generated 1 image with Wan 2.6" in " ".join(page.split())
    # A model the catalog no longer knows is shown by the only name there is.
    assert '<span title="wan2.0-retired">wan2.0-retired</span>' in page
    compare = client.get(reverse("gallery-compare"), {"image": [image.pk, gone.pk]})
    assert '<span title="wan2.6-t2i">Wan 2.6</span>' in compare.content.decode()
