"""Pages that redraw themselves while a job goes on keep what the designer was doing: the
focus on the result she is on, and the history she opened."""

from __future__ import annotations

from tests.support.browser import stored_image
from tests.support.factories import create_job_row


def test_the_focus_stays_on_a_result_while_the_list_redraws_itself(page, designer_member):
    done = stored_image(designer_member, "A brass lamp on a desk", (200, 160, 60), 5)
    create_job_row(designer_member, prompt="A quiet harbour")  # open: the list polls
    page.goto("/generate/")
    tile = page.locator(f'a[data-viewer][href="/gallery/images/{done.pk}/"]')
    tile.focus()
    focused = page.evaluate("document.activeElement.id")
    assert focused
    with page.expect_response(lambda r: "/jobs/recent" in r.url) as polled:
        pass
    assert polled.value.ok
    page.wait_for_timeout(300)  # the swap settles
    assert page.evaluate("document.activeElement.id") == focused
    # And the list says where the open job is.
    assert page.locator("[data-tile=waiting]", has_text="Next in line").count() == 1


def test_the_job_pages_details_stay_open_while_it_polls(page, designer_member):
    job = create_job_row(designer_member, prompt="A quiet harbour")
    job.events.create(status=job.Status.QUEUED, message="Queued.", request_id="req-7")
    page.goto(f"/jobs/{job.pk}/")
    details = page.locator("details.job-details")
    assert not details.evaluate("d => d.open")
    details.locator("summary").click()
    assert page.locator("#job-history", has_text="req-7").is_visible()
    job.events.create(status=job.Status.QUEUED, message="Still in line.")
    page.locator("#job-history", has_text="Still in line.").wait_for(timeout=5000)
    assert details.evaluate("d => d.open")
    assert page.locator("#job-history").is_visible()
