"""The admin's studio pages as staff see them in the browser: what reads as an alarm and
what answers an error page."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType

from studio.generation.models import Job, LeaseTerm
from tests.support.browser import screenshot


def make_staff(member) -> None:
    User.objects.filter(pk=member.user_id).update(is_staff=True, is_superuser=True)


def test_health_says_the_idle_dispatcher_is_idle_and_when_it_last_ran(page, designer_member):
    make_staff(designer_member)
    LeaseTerm.begin("dispatcher", "host:1:abc")
    LeaseTerm.end("dispatcher", "host:1:abc")
    page.goto("/admin/health/")
    text = page.locator("#content").inner_text()
    assert "idle, with nothing to do; it last ran at" in text
    assert "not running" not in text.lower()
    screenshot(page, "admin-health-idle")


def test_view_on_site_for_an_id_that_is_no_job_is_not_found(page, designer_member):
    make_staff(designer_member)
    job_type = ContentType.objects.get_for_model(Job)
    response = page.goto(f"/admin/r/{job_type.pk}/987654321/")
    assert response is not None and response.status == 404
    assert "Server Error" not in page.content()
