"""The gallery's search finds a picture by the text of the piece it illustrates as well as
by its prompt: every word, in either."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from studio.generation.models import Job
from tests.support.factories import create_generated_image, create_job_row


@pytest.fixture
def signed_in(client, member):
    client.force_login(member.user)
    return client


def ids_on(page: str) -> set[int]:
    return {int(i) for i in re.findall(r'data-image="(\d+)"', page)}


def test_a_picture_is_found_by_its_piece_text_and_its_prompt(signed_in, member):
    job = create_job_row(
        member,
        model="wan2.6-image",
        prompt="A bread recipe",
        parameters={"enable_interleave": True, "max_images": 5, "n": 1},
        status=Job.Status.SUCCEEDED,
        output_parts=[{"text": "Knead the dough."}, {"image": 0}, {"text": "Bake."}],
        output_text="Knead the dough.Bake.",
    )
    picture = create_generated_image(member, job=job)
    chair = create_generated_image(member, prompt="A bread bin beside a chair")

    def found(q: str) -> set[int]:
        return ids_on(signed_in.get(reverse("gallery"), {"q": q}).content.decode())

    assert found("knead") == {picture.pk}  # in the piece's text only
    assert found("bread") == {picture.pk, chair.pk}  # in both prompts
    assert found("bread dough") == {picture.pk}  # one word in the prompt, one in the text
    assert found("chair dough") == set()  # every word, in this image's job
    assert found("bake knead") == {picture.pk}
