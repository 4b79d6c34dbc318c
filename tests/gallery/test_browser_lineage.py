"""An image edited three times in a chain, in a real browser against the emulator: each
edit started with "Use as input" from the image before it; the viewer's lineage shows all
four with working links, compares an image with its parent, and stays readable once the
middle one is in the trash."""

from __future__ import annotations

from typing import Any

import pytest

from studio.accounts.models import Membership
from studio.generation.models import GeneratedImage, Job
from tests.support.browser import finished_job, job_ended, screenshot
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.django_db(transaction=True)]


def finished(prompt: str) -> GeneratedImage:
    """The edit's image, once the job sent with this prompt has ended."""
    wait_for(lambda: Job.objects.filter(prompt=prompt).exists(), 30)
    return job_ended(Job.objects.get(prompt=prompt).pk).images.get()


def edit_in_browser(page: Any, image: GeneratedImage, prompt: str) -> GeneratedImage:
    page.goto(f"/gallery/images/{image.pk}/")
    page.get_by_role("button", name="Use as input").click()
    page.wait_for_url("**/edit/**")
    page.locator("[data-input]").first.wait_for()
    page.select_option("select[name=size]", "1K")
    page.fill("textarea[name=prompt]", prompt)
    page.get_by_role("button", name="Edit", exact=True).click()
    return finished(prompt)


def lineage_ids(page: Any) -> list[str]:
    return page.eval_on_selector_all(
        "[data-lineage] [data-lineage-node]", "nodes => nodes.map(n => n.dataset.lineageNode)"
    )


def test_three_edits_in_a_chain_and_the_viewers_lineage(page, worker, designer_member):
    # The designer's team owner trashes an image at the end; the designer is made owner.
    designer_member.role = Membership.Role.OWNER
    designer_member.save()
    root = finished_job(designer_member, "A blue vase", size=(800, 800)).images.get()
    chain = [root]
    for prompt in ("Make the vase taller", "Put it on a shelf", "Evening light"):
        chain.append(edit_in_browser(page, chain[-1], prompt))
    first, second, third, fourth = chain

    page.goto(f"/gallery/images/{fourth.pk}/")
    assert lineage_ids(page) == [str(i.pk) for i in chain]
    screenshot(page, "lineage-viewer")
    # Each place is a working link: the first opens its own page, with the same tree.
    page.locator(f"[data-lineage] a[data-lineage-node='{first.pk}']").click()
    page.locator("[data-lineage] .is-current").wait_for()
    page.wait_for_function(
        f"() => document.querySelector('[data-image-panel]').dataset.imageId === '{first.pk}'"
    )
    assert lineage_ids(page) == [str(i.pk) for i in chain]

    # In the viewer over the grid, a lineage link opens that image there, at its address.
    page.goto("/gallery/")
    page.locator(f'.gallery-card[data-image="{fourth.pk}"] a[data-viewer]').click()
    dialog = page.locator("#viewer")
    dialog.locator("[data-lineage]").wait_for()
    dialog.locator(f"[data-lineage] a[data-lineage-node='{third.pk}']").click()
    page.wait_for_url(f"**/gallery/images/{third.pk}/")
    page.locator("#viewer-title", has_text="Put it on a shelf").wait_for()
    assert dialog.locator("[data-image-panel]").get_attribute("data-image-id") == str(third.pk)
    # Closed, the viewer goes back to the grid's address.
    page.keyboard.press("Escape")
    page.wait_for_url("**/gallery/")

    page.goto(f"/gallery/images/{fourth.pk}/")
    page.get_by_role("link", name="Compare with parent").click()
    page.wait_for_url("**/compare/**")
    shown = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.getAttribute('src'))")
    assert any(f"/jobs/{third.job_id}/images/0/original" in s for s in shown)
    assert any(f"/jobs/{fourth.job_id}/images/0/original" in s for s in shown)

    page.goto(f"/gallery/images/{second.pk}/")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Move to trash").click()
    page.wait_for_url("**/gallery/**")
    page.goto(f"/gallery/images/{fourth.pk}/")
    assert lineage_ids(page) == [str(first.pk), "removed", str(third.pk), str(fourth.pk)]
    assert page.locator("[data-lineage] .is-removed").inner_text() == "Removed"
    screenshot(page, "lineage-viewer-middle-trashed")
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "lineage-viewer-phone")
