"""An image's lineage: each input taken from a stored image keeps a link to it, through
"Use as input", a remix and a run again; the viewer shows the chain both ways, compares an
image with its parent, and stays readable when an image in the middle is trashed or
deleted for good; the gallery lists an image's edits."""

from __future__ import annotations

import itertools
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from studio.generation.lineage import lineage_of
from studio.generation.models import GeneratedImage, Job, JobInput, StagedImage
from studio.generation.services import retry_job
from tests.support.pipeline import Pipeline

pytestmark = pytest.mark.django_db


def edit_from(client, pipeline: Pipeline, image: GeneratedImage, prompt: str) -> GeneratedImage:
    """Use the image as input, as a designer does from the viewer, send the edit, run it."""
    client.post(reverse("use-as-input", args=[image.job_id, image.index]))
    staged = StagedImage.objects.filter(position__isnull=False).get()
    data = {
        "model": "wan2.7-image-pro",
        "prompt": prompt,
        "size": "1K",
        "n": "1",
        "input": [str(staged.pk)],
        f"boxes-{staged.pk}": "",
    }
    response = client.post(reverse("edit"), data)
    assert response.status_code == 302, response.content.decode()[:400]
    pipeline.drive()
    return Job.objects.get(prompt=prompt).images.get()


@pytest.fixture
def chain(pipeline: Pipeline, member, client, media) -> list[GeneratedImage]:
    """An image from a prompt, edited three times, each edit of the one before."""
    client.force_login(member.user)
    first = pipeline.submit(
        member, model="wan2.6-t2i", prompt="A vase", parameters={"size": "1280*1280", "n": 1}
    )
    pipeline.drive()
    images = [first.images.get()]
    for prompt in ("Bluer", "Taller", "On a shelf"):
        images.append(edit_from(client, pipeline, images[-1], prompt))
    return images


def nodes(page: str) -> list[str]:
    return re.findall(r'data-lineage-node="([^"]+)"', page)


def test_each_edit_keeps_a_link_to_the_image_it_was_made_from(chain):
    first, second, third, fourth = chain
    for parent, child in itertools.pairwise(chain):
        (item,) = child.job.inputs.all()
        assert item.source_image == parent
        assert (item.source_job_id, item.source_index) == (parent.job_id, parent.index)
    tree = lineage_of(third)
    assert [[n.image for n in level] for level in tree.ancestors] == [[first], [second]]
    assert [[n.image for n in level] for level in tree.descendants] == [[fourth]]
    assert tree.kept_parent == second
    # The root of the chain was made from a prompt: nothing above it.
    assert lineage_of(first).ancestors == []


def test_the_viewer_shows_all_four_with_working_links_and_compares_with_the_parent(client, chain):
    first, second, third, fourth = chain
    page = client.get(reverse("gallery-image", args=[fourth.pk])).content.decode()
    assert nodes(page) == [str(first.pk), str(second.pk), str(third.pk), str(fourth.pk)]
    for image in (first, second, third):
        link = reverse("gallery-image", args=[image.pk])
        assert f'href="{link}"' in page
        assert client.get(link).status_code == 200
    compare = f"{reverse('gallery-compare')}?image={third.pk}&amp;image={fourth.pk}"
    assert compare in page
    shown = client.get(compare.replace("&amp;", "&")).content.decode()
    for image in (third, fourth):
        assert f"/jobs/{image.job_id}/images/{image.index}/original" in shown
    # From the middle, both ways.
    middle = client.get(reverse("gallery-image", args=[second.pk])).content.decode()
    assert nodes(middle) == [str(first.pk), str(second.pk), str(third.pk), str(fourth.pk)]


def test_trashing_the_middle_keeps_the_tree_readable(client, chain):
    first, second, third, fourth = chain
    GeneratedImage.objects.filter(pk=second.pk).update(deleted_at=timezone.now())
    page = client.get(reverse("gallery-image", args=[fourth.pk])).content.decode()
    assert nodes(page) == [str(first.pk), "removed", str(third.pk), str(fourth.pk)]
    assert "Removed" in page
    # Deleted for good: still a removed place, and the chain above it still shown.
    second.delete()
    page = client.get(reverse("gallery-image", args=[fourth.pk])).content.decode()
    assert nodes(page) == ["removed", str(third.pk), str(fourth.pk)]
    (item,) = third.job.inputs.all()
    assert item.source_image is None and item.source_job_id == second.job_id


def test_the_gallery_lists_the_edits_of_an_image(client, chain):
    first, second, _third, _fourth = chain
    page = client.get(reverse("gallery"), {"edits_of": first.pk}).content.decode()
    assert re.findall(r'data-image="(\d+)"', page) == [str(second.pk)]
    assert "Edits of an image" in page


def test_a_remix_and_a_run_again_keep_the_link(client, chain, member, pipeline):
    _first, second, third, _fourth = chain
    retried = retry_job(third.job, membership=member)
    assert retried.inputs.get().source_image == second
    response = client.get(reverse("edit") + f"?remix={third.job_id}")
    assert response.status_code == 302
    copy = StagedImage.objects.filter(position__isnull=False).latest("created_at")
    assert copy.source_image == second


def test_an_uploaded_reference_is_a_root(client, chain, member):
    from django.core.files.base import ContentFile

    first = chain[0]
    job = first.job
    upload = JobInput(job=job, position=1, mime="image/png", width=10, height=10, bytes=3)
    upload.sha256 = "0" * 64
    upload.image.save("1.png", ContentFile(b"png"), save=False)
    upload.save()
    (level,) = lineage_of(first).ancestors
    (node,) = level
    assert node.upload == upload and not node.removed
    page = client.get(reverse("gallery-image", args=[first.pk])).content.decode()
    assert "Uploaded reference image 1" in page


def test_an_image_of_another_team_is_not_linked_nor_shown(client, chain, member):
    from tests.support.factories import (
        create_generated_image,
        create_membership,
        create_team,
        create_user,
    )

    # A second team, first by name: the studio now acts in it for this person.
    other = create_team(name="Aardvark Ltd", slug="aardvark")
    create_membership(team=other, user=member.user)
    first = chain[0]
    client.post(reverse("use-as-input", args=[first.job_id, first.index]))
    staged = StagedImage.objects.filter(team=other).get()
    assert staged.source_image is None  # started there as an upload would
    # And a link across teams from before is not shown.
    item = chain[1].job.inputs.get()
    theirs = create_membership(team=other, user=create_user(username="ari"))
    item.source_image = create_generated_image(theirs, prompt="Their campaign")
    item.save()
    (level,) = lineage_of(chain[1]).ancestors
    assert [n.removed for n in level] == [True]
