"""Every page a designer, a reviewer and an owner open, on a laptop and on a phone.

Each page is loaded at 1440×900 and at 390×844, a screenshot of each is saved under
`.test-artifacts/screenshots/pages/`, and at phone width no page may scroll sideways: what
does not fit wraps, or scrolls inside its own box (a wide table), never the page.
"""

from __future__ import annotations

from typing import Any

import pytest

from studio.accounts.models import Membership
from tests.support.browser import screenshot, serious_accessibility_problems, stored_image

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1440, "height": 900}


def overflow(page: Any) -> list[str]:
    """What sticks out past the window's right edge, if the page scrolls sideways."""
    return page.evaluate(
        """() => {
          const width = document.documentElement.clientWidth;
          if (document.documentElement.scrollWidth <= width) return [];
          const wide = [];
          for (const el of document.querySelectorAll("body *")) {
            const box = el.getBoundingClientRect();
            if (box.right > width + 1 && box.width > 0) {
              const name = el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
                (el.className && typeof el.className === "string"
                  ? "." + el.className.trim().split(/\\s+/).join(".") : "");
              wide.push(name + " (right " + Math.round(box.right) + ")");
            }
          }
          return wide.slice(0, 8);
        }"""
    )


def visit(page: Any, path: str, name: str, problems: dict[str, list[str]]) -> list[str]:
    page.set_viewport_size(LAPTOP)
    page.goto(path)
    screenshot(page, f"pages/{name}-1440")
    if found := serious_accessibility_problems(page):
        problems[name] = found
    wide = [f"at 1440: {what}" for what in overflow(page)]
    page.set_viewport_size(PHONE)
    page.goto(path)
    screenshot(page, f"pages/{name}-390")
    return wide + [f"at 390: {what}" for what in overflow(page)]


def designer_pages(member: Membership) -> dict[str, str]:
    image = stored_image(member, "A brass lamp on a desk, warm light", (200, 160, 60), 1)
    other = stored_image(member, "A red chair in a white room", (190, 40, 40), 2)
    job = image.job
    return {
        "home": "/",
        "generate": "/generate/",
        "edit": "/edit/",
        "gallery": "/gallery/",
        "job": f"/jobs/{job.pk}/",
        "image": f"/gallery/images/{image.pk}/",
        "compare": f"/gallery/compare/?image={image.pk}&image={other.pk}",
        "activity": "/gallery/activity/",
        "trash": "/gallery/trash/",
    }


@pytest.mark.parametrize("role", ["designer", "reviewer", "owner"])
def test_no_page_scrolls_sideways_on_a_phone(page, designer_member, role):
    Membership.objects.filter(pk=designer_member.pk).update(role=role)
    pages = designer_pages(designer_member)
    problems: dict[str, list[str]] = {}
    wide = {name: visit(page, path, f"{role}-{name}", problems) for name, path in pages.items()}
    assert not problems, problems
    assert not {name: what for name, what in wide.items() if what}, wide


def test_the_admins_studio_pages_fit_a_phone(page, designer_member):
    from django.contrib.auth.models import User

    User.objects.filter(pk=designer_member.user_id).update(is_staff=True, is_superuser=True)
    image = stored_image(designer_member, "A brass lamp", (200, 160, 60), 1)
    team = designer_member.team
    # The studio's own admin pages, and the lists and forms of what the studio adds.
    pages = {
        "admin-index": "/admin/",
        "admin-health": "/admin/health/",
        "admin-usage": "/admin/usage/",
        "admin-teams": "/admin/accounts/team/",
        "admin-team": f"/admin/accounts/team/{team.pk}/change/",
        "admin-memberships": "/admin/accounts/membership/",
        "admin-jobs": "/admin/generation/job/",
        "admin-job": f"/admin/generation/job/{image.job.pk}/change/",
        "admin-prices": "/admin/accounts/modelprice/",
        "admin-audit": "/admin/audit/entry/",
    }
    problems: dict[str, list[str]] = {}
    wide = {name: visit(page, path, name, problems) for name, path in pages.items()}
    assert not {name: what for name, what in wide.items() if what}, wide
    assert not problems, problems


def test_the_sign_in_page_fits_a_phone(browser, live_server):
    context = browser.new_context(base_url=live_server.url, viewport=PHONE)
    page = context.new_page()
    page.goto("/accounts/login/")
    screenshot(page, "pages/sign-in-390")
    assert not overflow(page)
    assert not serious_accessibility_problems(page)
    page.set_viewport_size(LAPTOP)
    screenshot(page, "pages/sign-in-1440")
    context.close()
