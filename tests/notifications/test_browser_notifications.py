"""The bell in a real browser: a colleague's mention raises its count without a reload,
and opening the notification from the list marks it read."""

from __future__ import annotations

from typing import Any

import pytest

from studio.accounts.models import Membership
from studio.gallery.services import add_comment
from studio.notifications.models import Notification
from tests.support.browser import screenshot, serious_accessibility_problems, signed_in_context
from tests.support.factories import create_membership, create_user
from tests.support.gallery import stored_image

pytestmark = [pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


def bell(page: Any) -> Any:
    return page.locator("#notification-bell")


def test_a_mention_raises_the_bells_count_live_and_opening_it_marks_it_read(page, designer_member):
    colleague = create_user(username="omar")
    create_membership(team=designer_member.team, user=colleague, role=Membership.Role.OWNER)
    image = stored_image(designer_member, "A poster for the fair", (200, 90, 60), 5)
    page.goto("/gallery/")
    assert bell(page).get_attribute("aria-label") == "Notifications, 0 unread"

    add_comment(image, colleague, "@dana the title needs more room", None)
    # The bell polls: the count arrives without a reload.
    page.evaluate("window.stillThisPage = true")
    bell(page).and_(page.locator('[aria-label="Notifications, 1 unread"]')).wait_for(timeout=30_000)
    assert page.evaluate("window.stillThisPage") is True
    assert bell(page).locator(".bell-count").inner_text() == "1"
    screenshot(page, "notifications-bell-1440")

    bell(page).click()
    page.wait_for_url("**/notifications/")
    item = page.locator(".notification.is-unread")
    assert item.count() == 1
    assert "omar mentioned you on “A poster for the fair”" in item.inner_text()
    screenshot(page, "notifications-list-1440")
    assert not serious_accessibility_problems(page)

    item.get_by_role("link").click()
    page.wait_for_url(f"**/gallery/images/{image.pk}/")
    assert bell(page).get_attribute("aria-label") == "Notifications, 0 unread"
    assert not Notification.objects.get(recipient=designer_member.user).is_unread
    page.goto("/notifications/")
    assert page.locator(".notification.is-unread").count() == 0
    assert page.locator(".notification").count() == 1


def test_the_list_and_settings_fit_a_phone(
    browser, live_server, designer_member, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path / "media"
    colleague = create_user(username="omar")
    create_membership(team=designer_member.team, user=colleague, role=Membership.Role.OWNER)
    image = stored_image(designer_member, "A very long prompt " * 12, (20, 90, 160), 5)
    add_comment(image, colleague, "@dana " + "wordswithoutanyspaces" * 8, None)
    context = signed_in_context(browser, live_server, designer_member.user, viewport=PHONE)
    phone = context.new_page()
    try:
        phone.goto("/notifications/")
        assert bell(phone).is_visible()
        assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        screenshot(phone, "notifications-list-390")
        phone.goto("/notifications/settings/")
        assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        screenshot(phone, "notifications-settings-390")
        assert not serious_accessibility_problems(phone)
    finally:
        context.close()


def test_a_designer_asks_a_reviewer_from_the_image_page_and_the_reviewer_is_told(
    page, designer_member
):
    reviewer = create_user(username="rosa")
    create_membership(team=designer_member.team, user=reviewer, role=Membership.Role.REVIEWER)
    image = stored_image(designer_member, "A label for the jam", (90, 160, 90), 5)
    page.goto(f"/gallery/images/{image.pk}/")
    control = page.locator("[data-review-request]")
    control.get_by_label("Reviewer to ask").select_option(label="rosa (reviewer)")
    control.get_by_role("button", name="Ask for a review").click()
    page.get_by_text("rosa is asked to review it.").wait_for()
    assert "Review asked of rosa (by dana)" in control.inner_text()
    screenshot(page, "notifications-ask-review-1440")
    assert not serious_accessibility_problems(page)
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(page, "notifications-ask-review-390")

    [notice] = Notification.objects.filter(recipient=reviewer)
    assert notice.text == "dana asked you to review “A label for the jam”."
