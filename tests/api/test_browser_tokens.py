"""The tokens page and the API's docs page in a real browser: a token made and shown
once, then used from a script; the docs page drawn under the Content-Security-Policy."""

from __future__ import annotations

import httpx
import pytest

from tests.support.browser import screenshot, serious_accessibility_problems

pytestmark = [pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


def test_a_token_made_on_the_settings_page_works_from_a_script(page, live_server):
    page.goto("/settings/tokens/")
    page.get_by_label("Name").fill("Design plugin")
    page.get_by_label("Read and generate").check()
    page.get_by_role("button", name="Make the token").click()
    secret = page.locator("[data-token]").inner_text()
    assert secret.startswith("stu_")
    assert serious_accessibility_problems(page) == []
    screenshot(page, "tokens-1440")
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(page, "tokens-390")

    answer = httpx.get(
        f"{live_server.url}/api/v1/me", headers={"Authorization": f"Bearer {secret}"}
    )
    assert answer.json()["scope"] == "generate"
    page.reload()
    assert secret not in page.content()
    assert "never used" not in page.locator("[data-token-row]").inner_text()


def test_the_docs_page_draws_the_operations(page):
    page.goto("/api/v1/docs")
    page.locator(".opblock").first.wait_for(timeout=15_000)
    assert page.locator(".opblock").count() >= 4
    screenshot(page, "api-docs-1440")
