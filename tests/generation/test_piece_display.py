"""A piece of mixed text and images as the studio shows it: in the results, on the job page
and in the viewer, its text and pictures in the order they came (output_parts), what has
arrived while it is still being written, and why it ended early when it did."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from studio.generation.models import Job
from studio.generation.views.shared import recent_jobs_context
from tests.support.browser import finished_job

PARTS = [
    {"text": "Mix the flour and the water.\n\nLet it rest an hour."},
    {"image": 0},
    {"text": "Shape the loaf."},
    {"image": 1},
    {"text": "Bake it until golden."},
]


def piece(member, *, parts=PARTS, stored: int = 2, **fields) -> Job:
    """A piece's job with `stored` of its pictures stored, and its parts as given."""
    job = finished_job(member, "A bread recipe", count=stored, model="wan2.6-image")
    Job.objects.filter(pk=job.pk).update(
        parameters={"enable_interleave": True, "max_images": 5, "n": 1},
        images_requested=5,
        output_parts=parts,
        output_text="".join(p.get("text", "") for p in parts),
        **fields,
    )
    return Job.objects.get(pk=job.pk)


@pytest.fixture
def designer_client(client, member, media):
    client.force_login(member.user)
    return client


def in_order(page: str, *words: str) -> bool:
    places = [page.find(word) for word in words]
    return -1 not in places and places == sorted(places)


def test_parts_read_in_order_with_their_stored_images(member, media):
    job = piece(member, parts=[{"text": "Mix "}, {"text": "the flour."}, *PARTS[1:]])
    parts = job.piece_parts()
    assert [p.text for p in parts if not p.is_picture] == [
        "Mix the flour.",
        "Shape the loaf.",
        "Bake it until golden.",
    ]
    pictures = [p for p in parts if p.is_picture]
    assert [(p.number, p.index, p.image.index) for p in pictures] == [(1, 0, 0), (2, 1, 1)]


def test_the_results_show_the_piece_in_order_each_picture_opening_the_viewer(
    designer_client, member
):
    job = piece(member)
    page = designer_client.get(reverse("recent-jobs")).content.decode()
    assert in_order(
        page,
        "Mix the flour",
        "Let it rest",
        "Picture 1 of the piece",
        "Shape the loaf",
        "Picture 2 of the piece",
        "Bake it until golden",
    )
    assert "<p>Mix the flour and the water.</p>" in page  # a paragraph each
    first = job.images.get(index=0)
    assert f'href="{reverse("gallery-image", args=[first.pk])}" data-viewer' in page
    assert "data-piece-waiting" not in page and "data-piece-end" not in page
    assert 'class="result-tiles' not in page  # a piece, not five places


def test_an_open_piece_shows_what_arrived_and_that_more_may_come(designer_client, member):
    piece(member, parts=PARTS[:2], stored=0, status=Job.Status.SUBMITTING, finished_at=None)
    page = designer_client.get(reverse("recent-jobs")).content.decode()
    assert in_order(page, "Let it rest", "Picture 1: storing it", "Being written: more may come")
    assert "every 2s" in page  # the results keep looking


def test_a_piece_broken_off_says_what_its_end_said(designer_client, member):
    job = piece(member, parts=PARTS[:2], stored=1, status=Job.Status.PARTIAL)
    told = "The provider broke off the connection after 1 picture; what it had written is kept."
    job.log("Downloading")
    job.events.create(status=Job.Status.PARTIAL, message=told)
    page = designer_client.get(reverse("recent-jobs")).content.decode()
    assert in_order(page, "Let it rest", "Picture 1 of the piece", told)
    detail = designer_client.get(reverse("job-detail", args=[job.pk])).content.decode()
    assert in_order(detail, "Let it rest", "Picture 1 of the piece", told)
    assert "up to 5 in a piece of text and images" in detail


def test_a_failed_piece_says_its_error(designer_client, member):
    told = "The provider stopped the piece with an error (InternalError.Algo: oops)."
    piece(member, parts=[], stored=0, status=Job.Status.FAILED, error_message=told)
    page = designer_client.get(reverse("recent-jobs")).content.decode()
    assert told in page


def test_a_picture_in_the_trash_leaves_its_place_saying_so(designer_client, member):
    job = piece(member)
    job.images.filter(index=1).update(deleted_at=timezone.now())
    page = designer_client.get(reverse("recent-jobs")).content.decode()
    assert in_order(page, "Picture 1 of the piece", "Picture 2 is not kept", "Bake it")


def test_the_results_ask_no_more_queries_for_more_pieces(member, media):
    piece(member)
    with CaptureQueriesContext(connection) as one:
        _render(recent_jobs_context(member))
    for _ in range(3):
        piece(member, stored=1, status=Job.Status.PARTIAL)
    with CaptureQueriesContext(connection) as four:
        _render(recent_jobs_context(member))
    assert len(four) == len(one)


def _render(context: dict) -> str:
    from django.template.loader import render_to_string

    return render_to_string("generation/recent_jobs.html", context)


def test_the_viewer_shows_the_piece_with_this_pictures_place_marked(designer_client, member):
    job = piece(member)
    second = job.images.get(index=1)
    page = designer_client.get(reverse("gallery-image", args=[second.pk])).content.decode()
    section = page[page.index("data-piece-context") :]
    assert in_order(section, "Mix the flour", "Picture 1", "Shape the loaf", "this picture")
    here = re.search(r'<p class="piece-here" aria-current="true"[^>]*>.*?</p>', section, re.S)
    assert here and "Picture 2: this picture" in here[0]
    first = job.images.get(index=0)
    assert f'href="{reverse("gallery-image", args=[first.pk])}' in section
    assert "Text and images" in page and "a piece of up to 5 pictures" in page


def test_other_images_show_no_piece(designer_client, member):
    job = finished_job(member, "A chair")
    page = designer_client.get(reverse("gallery-image", args=[job.images.get().pk]))
    assert "data-piece-context" not in page.content.decode()
