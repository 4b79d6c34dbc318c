"""Explore in a real browser: one prompt to three models with two seeds each, the grid
filling in as the jobs end, two people voting, and a reviewer sending the winner on."""

from __future__ import annotations

from typing import Any

import pytest

from studio.accounts.models import Membership
from studio.generation.models import Exploration, GeneratedImage, Vote
from tests.support.browser import (
    screenshot,
    serious_accessibility_problems,
    signed_in_context,
)
from tests.support.factories import create_membership, create_user

pytestmark = [pytest.mark.django_db(transaction=True)]

THREE = ["qwen-image-2.0-pro", "wan2.6-t2i", "wan2.7-image-pro"]  # as the form lists them
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1440, "height": 900}


def look(page: Any, name: str) -> None:
    screenshot(page, f"{name}-1440")
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(page, f"{name}-390")
    page.set_viewport_size(LAPTOP)


def vote_button(page: Any, row: int, column: int) -> Any:
    return page.locator(f"[data-cell='{row}-{column}'] .vote-button")


def test_one_prompt_three_models_two_seeds_voted_on_and_the_winner_sent_to_review(
    page, browser, live_server, designer_member, worker
):
    page.goto("/explore/")
    page.get_by_label("Prompt").fill("A lighthouse on a rocky coast at dusk, flat poster colours")
    for label in ("Wan 2.6", "Qwen-Image 2.0 Pro", "Wan 2.7 Image Pro"):
        page.get_by_label(label, exact=True).check()
    page.get_by_label("Seeds", exact=True).select_option("2")
    total = page.locator("[data-plan-total]")
    total.filter(has_text="6 images in all").wait_for()
    assert page.locator("[data-plan-model]").count() == 3
    assert serious_accessibility_problems(page) == []
    look(page, "explore-form")

    page.get_by_role("button", name="Explore", exact=True).click()
    page.wait_for_url("**/explore/*/")
    exploration = Exploration.objects.get()
    assert exploration.model_names == THREE
    # The grid fills in as the jobs end: models in columns, seeds in rows.
    headers = page.locator(".explore-table thead th")
    assert headers.all_inner_texts()[1:] == ["Qwen-Image 2.0 Pro", "Wan 2.6", "Wan 2.7 Image Pro"]
    page.wait_for_function(
        "() => document.querySelectorAll('#exploration-grid img[data-tile=image]').length === 6",
        timeout=60_000,
    )
    assert serious_accessibility_problems(page) == []
    look(page, "exploration-grid")

    # Two people vote for the same image: the count says so, to each of them.
    vote_button(page, 1, 2).click()
    vote_button(page, 1, 2).and_(page.locator("[aria-pressed=true]")).wait_for()
    assert vote_button(page, 1, 2).inner_text() == "▲ 1"
    reviewer = create_user(username="rita")
    create_membership(team=designer_member.team, user=reviewer, role=Membership.Role.REVIEWER)
    context = signed_in_context(browser, live_server, reviewer)
    try:
        other = context.new_page()
        other.goto(f"/explore/{exploration.pk}/")
        vote_button(other, 1, 2).click()
        other.locator("[data-cell='1-2'] [data-votes='2']").wait_for()
        # The reviewer sends the winner to review with one click.
        other.locator("[data-cell='1-2']").get_by_role("button", name="Send").click()
        other.locator("[data-cell='1-2'] [data-winner]").wait_for()
        assert "is-winner" in other.locator("[data-cell='1-2']").get_attribute("class")
        screenshot(other, "exploration-winner-1440")
    finally:
        context.close()
    exploration.refresh_from_db()
    winner = exploration.winner
    assert winner is not None and winner.job.model == "wan2.7-image-pro"
    assert winner.review_state == GeneratedImage.Review.IN_REVIEW
    assert Vote.objects.filter(image=winner).count() == 2
    page.reload()
    assert vote_button(page, 1, 2).get_attribute("data-votes") == "2"
    # The designer may not choose; "use these settings" opens Generate with the winner's.
    assert page.locator("[data-cell='1-2'] .winner-button").count() == 0
    page.locator("[data-cell='1-2']").get_by_role("link", name="Use these settings").click()
    page.wait_for_url("**/generate/**")
    assert page.locator("input[name=model]:checked").get_attribute("value") == "wan2.7-image-pro"
    assert page.locator("input[name=seed]").input_value() == str(exploration.seeds[1])


def test_the_edit_forms_images_are_offered_and_each_model_says_what_it_gets(page, designer_member):
    from studio.dashscope.catalog import get_model
    from studio.generation.staging import stage_image
    from tests.support.inputs import picture

    rule = get_model("wan2.7-image-pro").images
    for number in range(2):
        stage_image(designer_member, picture(900, 700), name=f"ref{number}.png", rule=rule)
    page.goto("/explore/")
    box = page.get_by_label("With the 2 reference images on your Edit form")
    assert box.is_checked()
    assert page.locator(".explore-references img").count() == 2
    page.get_by_label("Prompt").fill("The cup of image 1 on the table of image 2")
    for label in ("Qwen-Image 2.0 Pro", "Wan 2.7 Image Pro", "Wan 2.6 Image"):
        page.get_by_label(label, exact=True).check()
    page.locator("[data-plan-model='wan2.6-image']").wait_for()
    said = page.locator("#explore-plan").inner_text()
    assert "Takes no reference images" in said and "2 reference images" in said
    assert serious_accessibility_problems(page) == []
    look(page, "explore-with-references")
