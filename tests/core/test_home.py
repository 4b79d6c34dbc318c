"""Home answers "what's new": my latest images, what waits for my review, what is left."""

from __future__ import annotations

from decimal import Decimal

from studio.accounts.models import Membership
from studio.generation.models import GeneratedImage
from tests.support.factories import create_generated_image, create_membership, create_user


def section(page: str, title_id: str) -> str:
    """The glance card headed by `title_id`, up to the next card."""
    start = page.index(f'id="{title_id}"')
    end = page.find("</section>", start)
    return page[start:end]


def test_a_team_without_a_budget_is_told_so(client, team, designer):
    client.force_login(designer)
    assert "The team has no monthly budget." in client.get("/").content.decode()


def test_a_designer_sees_their_latest_images_and_what_is_left(client, team, designer):
    member = Membership.objects.get(user=designer)
    team.member_images_per_day = 20
    team.monthly_budget = Decimal("50.00")
    team.save()
    mine = create_generated_image(member, prompt="A brass lamp")
    colleague = create_membership(team=team, user=create_user(username="carl"))
    theirs = create_generated_image(colleague, prompt="A blue sofa")
    client.force_login(designer)
    page = client.get("/").content.decode()
    assert "What's new in Acme Design" in page
    own, team_part = section(page, "glance-mine"), section(page, "glance-team")
    assert f'href="/gallery/images/{mine.pk}/" data-viewer' in own  # opens in the viewer
    assert f'href="/gallery/images/{theirs.pk}/"' not in own  # their own, not the team's
    assert f'href="/gallery/images/{theirs.pk}/"' in team_part and "by carl" in team_part
    assert f'href="/gallery/images/{mine.pk}/"' not in team_part
    assert f"/jobs/{mine.job_id}/images/0/thumb" in page
    assert "<strong>20</strong> of 20 images left today" in page
    assert "of the team's 50.00" in page
    assert "Waiting for your review" not in page  # designers do not review


def test_a_reviewer_sees_what_waits_for_review_linked_to_the_gallery(client, team, designer):
    member = Membership.objects.get(user=designer)
    waiting = create_generated_image(member, prompt="A brass lamp")  # in review, as made
    approved = create_generated_image(member, prompt="A red chair")
    GeneratedImage.objects.filter(pk=approved.pk).update(
        review_state=GeneratedImage.Review.APPROVED
    )
    reviewer = create_membership(
        team=team, user=create_user(username="rita"), role=Membership.Role.REVIEWER
    )
    client.force_login(reviewer.user)
    page = client.get("/").content.decode()
    assert "<strong>1</strong> image in review." in page
    review = section(page, "glance-review")
    assert f'href="/gallery/images/{waiting.pk}/"' in review
    assert 'href="/gallery/?state=in_review"' in review
    assert f'href="/gallery/images/{approved.pk}/"' not in review
