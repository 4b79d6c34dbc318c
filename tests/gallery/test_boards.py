"""Boards as the gallery's sidebar: each with its count, and images dropped onto one."""

from __future__ import annotations

import pytest
from django.urls import reverse

from studio.accounts.models import Membership
from studio.gallery.models import Board
from tests.support.browser import screenshot, serious_accessibility_problems, stored_image
from tests.support.factories import (
    create_generated_image,
    create_membership,
    create_team,
    create_user,
)


@pytest.fixture
def member(db) -> Membership:
    team = create_team(name="Pixel Works", slug="pixel")
    return create_membership(team=team, user=create_user(username="dana"))


def test_the_sidebar_lists_each_board_with_its_images_not_in_the_trash(client, member):
    from django.utils import timezone

    kept, trashed = create_generated_image(member), create_generated_image(member)
    board = Board.objects.create(team=member.team, name="Spring picks")
    board.images.add(kept, trashed)
    trashed.deleted_at = timezone.now()
    trashed.save()
    Board.objects.create(team=member.team, name="Empty one")
    client.force_login(member.user)
    page = client.get(reverse("gallery"), {"board": board.pk}).content.decode()
    sidebar = page[
        page.index('id="boards-sidebar"') : page.index("</nav>", page.index('id="boards-sidebar"'))
    ]
    assert (
        'aria-label="1 image">1</span>' in sidebar and 'aria-label="0 images">0</span>' in sidebar
    )
    assert f'href="/gallery/?board={board.pk}" aria-current="page"' in sidebar


def test_images_dropped_on_a_board_are_added_once_and_the_counts_follow(client, member):
    first, second = create_generated_image(member), create_generated_image(member)
    board = Board.objects.create(team=member.team, name="Picks")
    client.force_login(member.user)
    url = reverse("gallery-board-add", args=[board.pk])
    answer = client.post(url, {"image": [first.pk, second.pk]}, HTTP_HX_REQUEST="true")
    html = answer.content.decode()
    assert html.lstrip().startswith('<nav id="boards-sidebar"')
    assert "2 images added to “Picks”." in html and 'aria-label="2 images">2</span>' in html
    again = client.post(url, {"image": [first.pk]}, HTTP_HX_REQUEST="true").content.decode()
    assert "Already on “Picks”." in again
    assert set(board.images.values_list("pk", flat=True)) == {first.pk, second.pk}
    # Without scripts: back to the board, with what was done said there.
    third = create_generated_image(member)
    response = client.post(url, {"image": [third.pk]})
    assert response.status_code == 302 and response["Location"] == f"/gallery/?board={board.pk}"
    assert board.images.count() == 3


def test_nobody_adds_to_another_teams_board_or_another_teams_images(client, member):
    other_team = create_team(name="Others", slug="others")
    outsider = create_membership(team=other_team, user=create_user(username="olaf"))
    theirs = Board.objects.create(team=other_team, name="Theirs")
    mine = Board.objects.create(team=member.team, name="Mine")
    their_image = create_generated_image(outsider)
    client.force_login(member.user)
    assert (
        client.post(reverse("gallery-board-add", args=[theirs.pk]), {"image": []}).status_code
        == 404
    )
    html = client.post(
        reverse("gallery-board-add", args=[mine.pk]),
        {"image": [their_image.pk]},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert "Nothing was added" in html and not mine.images.exists()
    viewer = create_membership(
        team=member.team, user=create_user(username="vic"), role=Membership.Role.VIEWER
    )
    client.force_login(viewer.user)
    mine_image = create_generated_image(member)
    assert (
        client.post(
            reverse("gallery-board-add", args=[mine.pk]), {"image": [mine_image.pk]}
        ).status_code
        == 403
    )


def test_images_dragged_onto_a_board_in_the_browser(page, designer_member):
    first = stored_image(designer_member, "A brass lamp on a desk", (200, 160, 60), 1)
    second = stored_image(designer_member, "A red chair in a white room", (190, 40, 40), 2)
    third = stored_image(designer_member, "A green vase", (40, 150, 60), 3)
    Board.objects.create(team=designer_member.team, name="Moodboard")
    page.goto("/gallery/")
    board = page.locator("#boards-sidebar .board-entry", has_text="Moodboard")
    assert board.locator(".board-count").inner_text() == "0"
    # What a drop did is said in the status that was on the page before it: a live region
    # brought in with its text already in it is often not read out.
    page.evaluate("document.querySelector('[data-board-status]').dataset.before = 'yes'")
    # One card, not ticked: that image alone.
    page.locator(f'.gallery-card[data-image="{first.pk}"] img').drag_to(board)
    page.locator("[data-board-status]", has_text="1 image added to “Moodboard”.").wait_for()
    board = page.locator("#boards-sidebar .board-entry", has_text="Moodboard")
    assert board.locator(".board-count").inner_text() == "1"
    # A ticked card carries the whole selection with it.
    page.locator(f'.gallery-card[data-image="{second.pk}"] .card-select').check()
    page.locator(f'.gallery-card[data-image="{third.pk}"] .card-select').check()
    page.locator(f'.gallery-card[data-image="{third.pk}"] img').drag_to(board)
    page.locator("[data-board-status]", has_text="2 images added").wait_for()
    assert page.locator("[data-board-status]").get_attribute("data-before") == "yes"
    assert page.locator("#boards-sidebar .board-entry .board-count").inner_text() == "3"
    assert set(Board.objects.get().images.values_list("pk", flat=True)) == {
        first.pk,
        second.pk,
        third.pk,
    }
    assert not serious_accessibility_problems(page)
    screenshot(page, "gallery-boards-1440")
    page.locator("#boards-sidebar a", has_text="Moodboard").click()
    page.wait_for_url("**/gallery/?board=*")
    assert page.locator(".gallery-card").count() == 3
    current = page.locator("#boards-sidebar a[aria-current=page]")
    assert current.inner_text().startswith("Moodboard")
    # Its count on the accent at full strength: dimmed, it is too faint to read there.
    assert current.locator(".board-count").evaluate("e => getComputedStyle(e).opacity") == "1"


def test_a_board_made_in_the_sidebar_starts_empty_and_the_grid_stays(client, member):
    client.force_login(member.user)
    url = reverse("gallery-board-create")
    # From the sidebar: back to the grid it was made beside, to drag images onto it.
    response = client.post(url, {"name": "Autumn", "next": "/gallery/?q=lamp"}, follow=True)
    assert response.redirect_chain == [("/gallery/?q=lamp", 302)]
    assert "Board “Autumn” made: drag images onto it." in response.content.decode()
    assert Board.objects.get(name="Autumn").images.count() == 0
    # Made twice: said so, and still one board.
    response = client.post(url, {"name": "Autumn", "next": "/gallery/"}, follow=True)
    assert "There is already a board “Autumn”" in response.content.decode()
    assert Board.objects.filter(name="Autumn").count() == 1
    # Another site as the way back is not followed: the new board instead.
    response = client.post(url, {"name": "Winter", "next": "https://example.com/"})
    assert response["Location"] == f"/gallery/?board={Board.objects.get(name='Winter').pk}"


def test_a_board_made_from_the_selection_shows_its_images(client, member):
    image = create_generated_image(member)
    client.force_login(member.user)
    response = client.post(
        reverse("gallery-board-create"),
        {"name": "Picks", "image": [image.pk], "next": "/gallery/?q=lamp"},
    )
    board = Board.objects.get(name="Picks")
    assert response["Location"] == f"/gallery/?board={board.pk}"
    assert list(board.images.all()) == [image]


def test_a_viewer_is_offered_no_board_to_drop_on(client, member):
    Board.objects.create(team=member.team, name="Spring picks")
    create_generated_image(member)
    client.force_login(member.user)
    assert "data-board-drop=" in client.get(reverse("gallery")).content.decode()
    viewer = create_membership(
        team=member.team, user=create_user(username="vic"), role=Membership.Role.VIEWER
    )
    client.force_login(viewer.user)
    page = client.get(reverse("gallery")).content.decode()
    assert "Spring picks" in page
    assert "data-board-drop=" not in page and "Drag images onto a board" not in page


def test_filtering_by_a_board_redraws_the_sidebars_list_out_of_band(client, member):
    board = Board.objects.create(team=member.team, name="Spring picks")
    client.force_login(member.user)
    html = client.get(
        reverse("gallery"),
        {"board": board.pk},
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="gallery-results",
    ).content.decode()
    assert '<ul id="board-list"' in html and 'hx-swap-oob="true"' in html
    assert f'data-current-board="{board.pk}"' in html
    assert f'href="/gallery/?board={board.pk}" aria-current="page"' in html
    # Only the list: the sidebar's status, perhaps being read out, is left alone.
    assert "data-board-status" not in html
    # The whole page has the list once, in place.
    page = client.get(reverse("gallery"), {"board": board.pk}).content.decode()
    assert page.count('id="board-list"') == 1 and "hx-swap-oob" not in page


def test_picking_a_board_in_the_filters_highlights_it_beside_the_grid(page, designer_member):
    first = stored_image(designer_member, "A brass lamp on a desk", (200, 160, 60), 1)
    stored_image(designer_member, "A red chair", (190, 40, 40), 2)
    board = Board.objects.create(team=designer_member.team, name="Moodboard")
    board.images.add(first)
    page.goto("/gallery/")
    page.evaluate("window.stillThisPage = true")
    page.select_option("select[name=board]", str(board.pk))
    page.wait_for_function("() => document.querySelectorAll('.gallery-card').length === 1")
    current = page.locator("#boards-sidebar a[aria-current=page]")
    current.filter(has_text="Moodboard").wait_for()
    assert current.count() == 1
    assert page.locator("#board-list").get_attribute("data-current-board") == str(board.pk)
    page.select_option("select[name=board]", "")
    page.wait_for_function("() => document.querySelectorAll('.gallery-card').length === 2")
    page.locator("#boards-sidebar a[aria-current=page]", has_text="All images").wait_for()
    assert page.evaluate("window.stillThisPage") is True  # all without a reload
    # A board made in the sidebar comes back to the grid as filtered now, not as first drawn.
    page.fill("input[name=q]", "brass")
    page.wait_for_function("() => document.querySelectorAll('.gallery-card').length === 1")
    page.locator("#boards-sidebar").get_by_label("New board name").fill("Autumn")
    page.locator("#boards-sidebar").get_by_role("button", name="Create").click()
    page.wait_for_url("**/gallery/?*q=brass*")
    page.get_by_text("Board “Autumn” made: drag images onto it.").wait_for()
    assert page.locator(".gallery-card").count() == 1
