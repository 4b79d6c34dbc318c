"""Who is watching a job: marked by its page's poll, asked by the worker at its end."""

from __future__ import annotations

from django.urls import reverse

from studio.accounts.models import Membership
from studio.generation.models import Job
from studio.notifications.watching import is_watching, mark_watching
from tests.support.factories import create_job_row


def test_a_mark_is_for_that_person_and_that_job(designer, owner):
    mark_watching(designer.pk, ["job-1", "job-2"])

    assert is_watching(designer.pk, "job-1") and is_watching(designer.pk, "job-2")
    assert not is_watching(designer.pk, "job-3")
    assert not is_watching(owner.pk, "job-1")


def test_the_job_page_marks_an_open_job_as_watched(client, team, designer):
    member = Membership.objects.get(team=team, user=designer)
    running = create_job_row(member, status=Job.Status.RUNNING)
    done = create_job_row(member, status=Job.Status.SUCCEEDED)
    client.force_login(designer)

    client.get(reverse("job-detail", args=[running.pk]), HTTP_HX_REQUEST="true")
    client.get(reverse("job-detail", args=[done.pk]))

    assert is_watching(designer.pk, running.pk)
    assert not is_watching(designer.pk, done.pk)  # nothing left to tell about it
