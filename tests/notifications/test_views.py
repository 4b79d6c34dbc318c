"""The bell, the list, opening a notification, marking all read, and the settings page."""

from __future__ import annotations

from django.urls import reverse

from studio.notifications.models import Kind, Notification, Preference
from studio.notifications.services import notify


def tell(user, text: str, link: str = "/gallery/") -> Notification:
    made = notify(user.pk, Kind.MENTION, text, link)
    assert made is not None
    return made


def test_the_bell_says_how_many_are_unread(client, designer):
    client.force_login(designer)
    page = client.get(reverse("home")).content.decode()
    assert 'aria-label="Notifications, 0 unread"' in page

    tell(designer, "One")
    tell(designer, "Two")
    bell = client.get(reverse("notification-bell"), HTTP_HX_REQUEST="true").content.decode()
    assert 'aria-label="Notifications, 2 unread"' in bell
    assert 'id="notification-bell"' in bell and "<html" not in bell
    # Polled, and drawn again when the page's jobs change.
    assert 'hx-trigger="every 20s, jobs-changed from:body"' in bell


def test_the_bell_of_someone_signed_out_is_left_alone(client):
    assert client.get(reverse("notification-bell")).status_code == 204


def test_the_list_shows_the_newest_first_with_the_unread_marked(client, designer, owner):
    older = tell(designer, "Older")
    newer = tell(designer, "Newer")
    tell(owner, "Not for dan")
    Notification.objects.filter(pk=older.pk).mark_read()
    client.force_login(designer)

    page = client.get(reverse("notifications")).content.decode()
    assert page.index("Newer") < page.index("Older")
    assert "Not for dan" not in page
    assert f'class="notification is-unread" data-notification="{newer.pk}"' in page
    assert f'class="notification" data-notification="{older.pk}"' in page
    assert "1 unread" in page and "Mark all as read" in page
    assert reverse("notification-settings") in page


def test_opening_one_marks_it_read_and_goes_to_its_page(client, designer):
    notice = tell(designer, "Look", link="/gallery/images/7/")
    other = tell(designer, "Other")
    client.force_login(designer)

    answer = client.get(reverse("notification-open", args=[notice.pk]))
    assert answer.status_code == 302 and answer["Location"] == "/gallery/images/7/"
    notice.refresh_from_db()
    other.refresh_from_db()
    assert not notice.is_unread and other.is_unread


def test_nobody_opens_another_persons_notification(client, designer, owner):
    notice = tell(owner, "Private")
    client.force_login(designer)

    assert client.get(reverse("notification-open", args=[notice.pk])).status_code == 404
    notice.refresh_from_db()
    assert notice.is_unread


def test_mark_all_as_read(client, designer, owner):
    tell(designer, "One")
    tell(designer, "Two")
    theirs = tell(owner, "Theirs")
    client.force_login(designer)

    assert client.post(reverse("notifications-read")).status_code == 302
    assert not Notification.objects.filter(recipient=designer).unread().exists()
    theirs.refresh_from_db()
    assert theirs.is_unread


def test_the_settings_page_chooses_per_kind(client, designer):
    client.force_login(designer)
    page = client.get(reverse("notification-settings")).content.decode()
    assert page.count('value="email" checked') == 2  # mentions and review requests
    assert "In the studio only" in page and "In the studio and by email" in page
    assert "no email address" in page

    choices = {kind: "studio" for kind in Kind.values} | {Kind.JOB: "email"}
    client.post(reverse("notification-settings"), choices)
    assert Preference.email_choices(designer.pk) == {
        Kind.MENTION: False,
        Kind.REVIEW_REQUEST: False,
        Kind.REVIEW: False,
        Kind.JOB: True,
        Kind.QUOTA: False,
    }
    assert tell(designer, "Hi").by_email is False


def test_the_pages_need_a_sign_in(client):
    for name in ("notifications", "notification-settings"):
        assert client.get(reverse(name)).status_code == 302


def test_what_she_was_told_of_a_team_she_has_left_is_no_longer_hers_to_read(client, designer, team):
    from studio.accounts.models import Membership

    kept = notify(designer.pk, Kind.MENTION, "About no team", "/gallery/")
    of_team = notify(designer.pk, Kind.MENTION, "Budget of Acme", "/gallery/", team_id=team.pk)
    assert kept is not None and of_team is not None
    client.force_login(designer)
    assert "Budget of Acme" in client.get(reverse("notifications")).content.decode()
    Membership.objects.filter(user=designer, team=team).delete()
    page = client.get(reverse("notifications")).content.decode()
    assert "Budget of Acme" not in page and "About no team" in page
    bell = client.get(reverse("notification-bell"), HTTP_HX_REQUEST="true").content.decode()
    assert 'aria-label="Notifications, 1 unread"' in bell
    opened = client.get(reverse("notification-open", args=[of_team.pk]))
    assert opened.status_code == 404
