"""Explore on the server: what each model will receive, said before sending; the whole
exploration reserved at once or refused whole; its jobs in the fair queue like any other;
the team's votes and the winner sent to review."""

from __future__ import annotations

import html
import re
from decimal import Decimal

import pytest
from django.urls import reverse

from studio.accounts.models import Membership, ModelPrice, QuotaCounter, Team
from studio.audit.models import Activity, Entry
from studio.generation.explore import plan_exploration, start_exploration
from studio.generation.models import (
    Exploration,
    ExplorationCell,
    GeneratedImage,
    Job,
    QuotaCharge,
    Vote,
)
from studio.generation.services import JobRefused
from studio.notifications.models import Notification
from tests.support.factories import create_generated_image, create_membership, create_user
from tests.support.pipeline import another_member, make_pipeline

pytestmark = pytest.mark.django_db

THREE = ["wan2.6-t2i", "qwen-image-2.0-pro", "wan2.7-image-pro"]
PROMPT = "A lighthouse on a rocky coast at dusk, flat poster colours"


def form_data(**fields) -> dict[str, object]:
    return {
        "prompt": PROMPT,
        "negative_prompt": "",
        "model_names": THREE,
        "rows": "2",
        "seed_values": "",
        "shape": "1:1",
        **fields,
    }


def texts(response) -> str:
    """The page's words as a person reads them, without its tags."""
    words = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))
    return html.unescape(re.sub(r" ([:,.;])", r"\1", words))


@pytest.fixture
def designer_client(client, designer, media):
    client.force_login(designer)
    return client


def test_before_sending_each_model_says_what_it_receives_and_the_total(designer_client):
    ModelPrice.objects.create(model="wan2.6-t2i", price_per_image=Decimal("0.03"))
    ModelPrice.objects.create(model="qwen-image-2.0-pro", price_per_image=Decimal("0.075"))
    ModelPrice.objects.create(model="wan2.7-image-pro", price_per_image=Decimal("0.05"))
    answer = designer_client.post(
        reverse("explore"),
        form_data(preview="1", negative_prompt="text, watermark", shape="16:9"),
        headers={"HX-Request": "true"},
    )
    said = texts(answer)
    assert "Wan 2.6: 2 images at 1440×1152" in said  # its nearest to 16:9, said so
    assert "Makes 1440×1152, the nearest to 16:9 it offers" in said
    assert "Qwen-Image 2.0 Pro: 2 images at 2688×1536" in said
    # Wan 2.7 takes any size within its range: 16:9 of its own, and no "Avoid".
    assert re.search(r"Wan 2\.7 Image Pro: 2 images at (\d+)×(\d+)", said)
    width, height = map(
        int, re.search(r"Wan 2\.7 Image Pro: 2 images at (\d+)×(\d+)", said).groups()
    )
    assert abs(width / height - 16 / 9) < 0.02
    assert "Takes no “Avoid”: sent without it" in said
    assert "6 images in all, at most 0.31 USD" in said
    assert not Job.objects.exists()


def test_a_prompt_one_model_cannot_take_is_named_on_that_model_and_nothing_is_sent(
    designer_client,
):
    long = "lighthouse " * 260  # 2,860 characters: over Wan 2.6's 2,100
    response = designer_client.post(reverse("explore"), form_data(prompt=long))
    said = texts(response)
    assert "Some models cannot take this as it is" in said
    page = response.content.decode()
    wan26 = re.search(r'data-plan-model="wan2.6-t2i">(.*?)</li>', page, re.S)[1]
    assert "field-error" in wan26
    wan27 = re.search(r'data-plan-model="wan2.7-image-pro">(.*?)</li>', page, re.S)[1]
    assert "field-error" not in wan27
    assert not Job.objects.exists() and not Exploration.objects.exists()


def test_sent_every_cell_is_a_job_reserved_at_once(designer_client, designer, team):
    response = designer_client.post(reverse("explore"), form_data(seed_values="7"))
    exploration = Exploration.objects.get()
    assert response["Location"] == reverse("exploration", args=[exploration.pk])
    assert exploration.model_names == THREE and exploration.seeds[0] == 7
    assert len(exploration.seeds) == 2 and exploration.seeds[1] >= 0
    cells = list(ExplorationCell.objects.select_related("job").order_by("row", "column"))
    assert [(c.row, c.column, c.job.model) for c in cells] == [
        (row, column, name) for row in range(2) for column, name in enumerate(THREE)
    ]
    assert {c.job.parameters["seed"] for c in cells if c.row == 0} == {7}
    assert all(c.job.parameters["n"] == 1 and c.job.author == designer for c in cells)
    reserved = QuotaCharge.objects.filter(kind=QuotaCharge.Kind.RESERVE)
    assert sum(charge.images for charge in reserved) == 6
    page = designer_client.get(reverse("exploration", args=[exploration.pk])).content.decode()
    assert page.count('data-tile="waiting"') == 6
    assert all(label in page for label in ("Wan 2.6", "Qwen-Image 2.0 Pro", "Wan 2.7 Image Pro"))


def test_too_few_images_left_refuse_the_whole_exploration_and_charge_nothing(
    designer_client, designer, team
):
    Membership.objects.filter(user=designer).update(images_per_day=5)
    response = designer_client.post(reverse("explore"), form_data())
    said = texts(response)
    assert response.status_code == 409
    assert (
        "You have 5 of 5 images left today and this exploration needs 6. "
        "Nothing was sent: choose fewer models or seeds." in said
    )
    assert not Job.objects.exists() and not Exploration.objects.exists()
    assert not QuotaCharge.objects.exists()
    counters = QuotaCounter.objects.all()
    assert all(counter.reserved == 0 and counter.used == 0 for counter in counters)
    # Five fit.
    five = designer_client.post(reverse("explore"), form_data(rows="1", model_names=THREE[:2]))
    assert five.status_code == 302 and Job.objects.count() == 2


def test_more_jobs_than_one_may_have_in_flight_are_refused_whole(designer_client, team):
    Team.objects.filter(pk=team.pk).update(member_jobs_in_flight=5)
    said = texts(designer_client.post(reverse("explore"), form_data()))
    assert "This exploration sends 6 jobs; you may have 5 queued or running at once" in said
    assert not Job.objects.exists()


def test_at_most_four_models_and_seeds_as_written(designer_client):
    five = [*THREE, "qwen-image-plus", "wan2.7-image"]
    said = texts(designer_client.post(reverse("explore"), form_data(model_names=five)))
    assert "Choose at most 4 models; 5 are ticked." in said
    said = texts(designer_client.post(reverse("explore"), form_data(seed_values="1, 2, 3")))
    assert "3 seeds are written for 2 rows" in said
    said = texts(designer_client.post(reverse("explore"), form_data(seed_values="seven")))
    assert "“seven” is not a seed" in said
    assert not Job.objects.exists()


def test_a_model_the_team_may_not_use_is_neither_offered_nor_sent(designer_client, team):
    Team.objects.filter(pk=team.pk).update(allowed_models=["wan2.6-t2i", "wan2.7-image-pro"])
    page = designer_client.get(reverse("explore")).content.decode()
    assert 'value="wan2.6-t2i"' in page and 'value="qwen-image-2.0-pro"' not in page
    said = texts(designer_client.post(reverse("explore"), form_data()))
    assert "qwen-image-2.0-pro is not one of the available choices" in said
    assert not Job.objects.exists()


def explored(membership: Membership) -> Exploration:
    """An exploration of two models and one seed whose jobs have each stored an image."""
    exploration = Exploration.objects.create(
        team=membership.team,
        author=membership.user,
        prompt=PROMPT,
        shape="1:1",
        model_names=THREE[:2],
        seeds=[11],
    )
    for column, name in enumerate(THREE[:2]):
        image = create_generated_image(membership, prompt=PROMPT, model=name)
        Job.objects.filter(pk=image.job_id).update(status=Job.Status.SUCCEEDED)
        ExplorationCell.objects.create(exploration=exploration, job=image.job, row=0, column=column)
    return exploration


def cell_images(exploration: Exploration) -> list[GeneratedImage]:
    return list(
        GeneratedImage.objects.filter(job__exploration_cell__exploration=exploration).order_by(
            "job__exploration_cell__column"
        )
    )


def test_team_members_vote_once_each_and_see_the_counts(client, designer, owner, viewer, media):
    exploration = explored(Membership.objects.get(user=designer))
    first, _ = cell_images(exploration)
    vote = reverse("exploration-vote", args=[exploration.pk, first.pk])
    for person in (designer, owner, viewer):
        client.force_login(person)
        assert client.post(vote).status_code == 302
    client.force_login(owner)
    client.post(vote)  # again: the vote taken back
    assert Vote.objects.filter(image=first).count() == 2
    page = client.get(reverse("exploration", args=[exploration.pk])).content.decode()
    assert 'data-votes="2"' in page and "2 votes" in page


def test_outsiders_neither_see_nor_vote(client, designer, outsider, media):
    exploration = explored(Membership.objects.get(user=designer))
    first, _ = cell_images(exploration)
    client.force_login(outsider)
    assert client.get(reverse("exploration", args=[exploration.pk])).status_code == 404
    vote = reverse("exploration-vote", args=[exploration.pk, first.pk])
    assert client.post(vote).status_code == 404
    assert not Vote.objects.exists()


def test_a_reviewer_sends_the_winner_to_review_and_a_designer_may_not(
    client, designer, owner, team, media
):
    reviewer = create_user(username="rita")
    create_membership(team=team, user=reviewer, role=Membership.Role.REVIEWER)
    exploration = explored(Membership.objects.get(user=designer))
    _, second = cell_images(exploration)
    GeneratedImage.objects.filter(pk=second.pk).update(review_state=GeneratedImage.Review.REJECTED)
    winner = reverse("exploration-winner", args=[exploration.pk, second.pk])
    client.force_login(designer)
    assert client.post(winner).status_code == 403
    client.force_login(reviewer)
    assert client.post(winner).status_code == 302
    exploration.refresh_from_db()
    second.refresh_from_db()
    assert exploration.winner == second
    assert second.review_state == GeneratedImage.Review.IN_REVIEW
    entry = Entry.objects.get(action=Entry.Action.REVIEW)
    assert entry.changes["review_state"] == ["rejected", "in_review"]
    page = client.get(reverse("exploration", args=[exploration.pk])).content.decode()
    assert "Winner · in review" in page
    told = Notification.objects.get(recipient=designer)
    assert "rita marked your image" in told.text and "winner of an exploration" in told.text
    # The team's other reviewers are asked to review it, not the one who sent it.
    asked = Notification.objects.get(recipient=owner)
    assert asked.text.startswith("rita asked you to review")
    assert not Notification.objects.filter(recipient=reviewer).exists()
    assert Activity.objects.filter(verb=Activity.Verb.REVIEWED, image_id=second.pk).exists()
    # "Use these settings": Generate with the winning job's model, seed and size.
    assert f"/generate/?remix={second.job_id}" in page


def test_an_explorations_jobs_wait_in_the_fair_queue_like_any_others(db, media):
    team = Team.objects.create(name="Studio E", slug="e", member_jobs_in_flight=50)
    alice, bob = another_member(team, "alice"), another_member(team, "bob")
    pipeline = make_pipeline(running_per_model=1)
    try:
        plan = plan_exploration(
            alice,
            prompt="A teapot",
            negative_prompt="",
            model_names=["wan2.6-t2i"],
            seeds=[1, 2, 3, 4],
            shape="1:1",
        )
        exploration = start_exploration(alice, plan, now=pipeline.now())
        more = plan_exploration(
            alice,
            prompt="A cup",
            negative_prompt="",
            model_names=["wan2.6-t2i"],
            seeds=[5, 6],
            shape="1:1",
        )
        start_exploration(alice, more, now=pipeline.now())
        pipeline.clock.advance(0.1)
        single = pipeline.submit(
            bob, model="wan2.6-t2i", prompt="A kettle", parameters={"size": "1280*1280", "n": 1}
        )
        pipeline.drive()
        tasks = pipeline.emulator.tasks
        bob_started = tasks[Job.objects.get(pk=single.pk).provider_task_id].start_at
        ahead = [
            job
            for job in Job.objects.filter(author=alice.user)
            if tasks[job.provider_task_id].start_at < bob_started
        ]
        assert len(ahead) <= 1  # the one already running when Bob asked
        assert Job.objects.filter(status=Job.Status.SUCCEEDED).count() == 7
        assert exploration.cells.count() == 4
    finally:
        pipeline.close()


def test_a_refused_exploration_leaves_nothing_behind(db, media):
    team = Team.objects.create(name="Studio F", slug="f", images_per_day=3)
    member = another_member(team, "fay")
    plan = plan_exploration(
        member,
        prompt="A teapot",
        negative_prompt="",
        model_names=["wan2.6-t2i"],
        seeds=[1, 2, 3, 4],
        shape="1:1",
    )
    with pytest.raises(JobRefused) as refused:
        start_exploration(member, plan)
    assert "Your team has 3 of 3 images left today and this exploration needs 4" in str(
        refused.value
    )
    assert not Exploration.objects.exists() and not Job.objects.exists()


def test_the_grid_open_in_front_of_its_author_counts_as_watching_its_jobs(
    designer_client, designer, owner
):
    from studio.notifications.watching import is_watching

    designer_client.post(reverse("explore"), form_data(model_names=THREE[:1], rows="1"))
    exploration = Exploration.objects.get()
    job = exploration.cells.get().job
    assert not is_watching(designer.pk, exploration.watch_key)
    designer_client.get(reverse("exploration", args=[exploration.pk]))
    assert is_watching(designer.pk, exploration.watch_key)
    assert not is_watching(owner.pk, exploration.watch_key)
    assert not is_watching(designer.pk, job.pk)  # the grid's one mark stands for its jobs


def test_its_author_is_told_once_the_whole_grid_is_done_unless_she_watches_it(designer):
    from studio.generation.worker.notices import _tell
    from studio.notifications.watching import mark_watching

    exploration = explored(Membership.objects.get(user=designer))
    first, second = [cell.job for cell in exploration.cells.order_by("column")]
    Job.objects.filter(pk=second.pk).update(status=Job.Status.RUNNING)
    _tell(first, Job.Status.SUCCEEDED)
    assert not Notification.objects.exists()  # one cell still to come
    Job.objects.filter(pk=second.pk).update(status=Job.Status.SUCCEEDED)
    _tell(second, Job.Status.SUCCEEDED)
    _tell(second, Job.Status.SUCCEEDED)  # told twice (two ends at once): said once
    told = Notification.objects.get(recipient=designer)
    assert told.text == f"Your exploration “{PROMPT}” is done: 2 images."
    assert told.link == reverse("exploration", args=[exploration.pk])
    watched = explored(Membership.objects.get(user=designer))
    mark_watching(designer.pk, [watched.watch_key])
    for cell in watched.cells.all():
        _tell(cell.job, Job.Status.SUCCEEDED)
    assert Notification.objects.count() == 1


def test_the_preview_says_when_too_many_models_are_ticked(designer_client):
    five = [*THREE, "qwen-image-plus", "wan2.7-image"]
    answer = designer_client.post(
        reverse("explore"), form_data(model_names=five, preview="1"), headers={"HX-Request": "true"}
    )
    assert "Choose at most 4 models; 5 are ticked" in texts(answer)


def staged_on_edit_form(client, count: int) -> list[str]:
    """`count` pictures on the designer's Edit form, as she left them."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from studio.generation.models import StagedImage
    from tests.support.emulation import make_image

    for number in range(count):
        upload = SimpleUploadedFile(f"ref{number}.png", make_image(800, 600))
        client.post(reverse("stage-input"), {"file": upload, "model": "wan2.7-image-pro"})
    staged = list(StagedImage.objects.order_by("position"))
    StagedImage.objects.filter(pk=staged[0].pk).update(regions="100,100,400,300")
    return [str(image.pk) for image in staged]


REFERENCED = ["qwen-image-2.0-pro", "wan2.7-image-pro", "wan2.6-image", "wan2.5-i2i-preview"]


def test_the_edit_forms_images_go_to_the_models_that_take_them_each_saying_how(
    designer_client,
):
    staged_on_edit_form(designer_client, 4)
    page = designer_client.get(reverse("explore")).content.decode()
    assert "With the 4 reference images on your Edit form" in texts_of(page)
    assert 'value="wan2.6-image"' in page  # an editing model, offered with images
    answer = designer_client.post(
        reverse("explore"),
        form_data(model_names=REFERENCED, with_references="on", preview="1", rows="1"),
        headers={"HX-Request": "true"},
    )
    said = texts(answer)
    assert "Qwen-Image 2.0 Pro: 1 image at 2048×2048. Takes no reference images" in said
    assert "Wan 2.7 Image Pro: 1 image at 2K, shaped like the last image." in said
    assert "4 reference images. With the regions on 1 of them." in said
    assert "Takes no regions: sent without them." in said  # Wan 2.6 Image
    assert "3 reference images" in said and "1 not sent: Not sent with Wan 2.5" in said

    sent = designer_client.post(
        reverse("explore"), form_data(model_names=REFERENCED, with_references="on", rows="1")
    )
    assert sent.status_code == 302, texts(sent)
    jobs = {job.model: job for job in Job.objects.prefetch_related("inputs")}
    assert jobs["qwen-image-2.0-pro"].kind == Job.Kind.TEXT_TO_IMAGE
    assert not jobs["qwen-image-2.0-pro"].inputs.exists()
    pro = jobs["wan2.7-image-pro"]
    assert pro.kind == Job.Kind.EDIT and pro.inputs.count() == 4
    assert pro.inputs.first().boxes == [[100, 100, 400, 300]]
    assert all(not i.boxes for i in jobs["wan2.6-image"].inputs.all())
    assert jobs["wan2.5-i2i-preview"].inputs.count() == 3
    exploration = Exploration.objects.get()
    assert exploration.references == 4
    # "Use these settings" of an edit opens Edit with its images; of the rest, Generate.
    for job in (pro, jobs["qwen-image-2.0-pro"]):
        Job.objects.filter(pk=job.pk).update(status=Job.Status.SUCCEEDED)
        GeneratedImage.objects.create(
            job=job, team=job.team, index=0, width=8, height=8, bytes=1, sha256="0" * 64
        )
    page = designer_client.get(reverse("exploration", args=[exploration.pk])).content.decode()
    assert f'href="/edit/?remix={pro.pk}"' in page
    assert f'href="/generate/?remix={jobs["qwen-image-2.0-pro"].pk}"' in page
    assert designer_client.get(f"/edit/?remix={pro.pk}").status_code == 302  # restaged


def test_an_editing_model_without_references_is_named_and_nothing_is_sent(designer_client):
    staged_on_edit_form(designer_client, 1)
    response = designer_client.post(
        reverse("explore"), form_data(model_names=["wan2.6-image", "wan2.6-t2i"])
    )
    assert "Wan 2.6 Image edits images: it needs at least one." in texts(response)
    assert not Job.objects.exists()


def texts_of(page: str) -> str:
    words = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))
    return html.unescape(re.sub(r" ([:,.;])", r"\1", words))
