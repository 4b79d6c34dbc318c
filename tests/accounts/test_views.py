from django.urls import reverse

from tests.support.factories import DEFAULT_PASSWORD, create_membership, create_team, create_user


def test_login_page_renders(client):
    response = client.get("/accounts/login/")

    assert response.status_code == 200
    assert b'name="username"' in response.content
    assert b'name="password"' in response.content


def test_login_redirects_home(client, designer):
    response = client.post(
        reverse("login"), {"username": designer.username, "password": DEFAULT_PASSWORD}
    )

    assert response.status_code == 302
    assert response.url == reverse("home")


def test_login_with_a_wrong_password_shows_an_error(client, designer):
    response = client.post(reverse("login"), {"username": designer.username, "password": "nope"})

    assert response.status_code == 200
    assert b"form-errors" in response.content
    assert "_auth_user_id" not in client.session


def test_home_requires_login(client):
    response = client.get(reverse("home"))

    assert response.status_code == 302
    assert response.url == f"{reverse('login')}?next=/"


def test_home_shows_only_the_users_teams_with_their_role(client, team, designer, outsider):
    second_team = create_team(name="Side Project")
    create_membership(team=second_team, user=designer, role="viewer")
    client.force_login(designer)

    response = client.get(reverse("home"))

    assert response.status_code == 200
    content = response.content.decode()
    assert "Acme Design" in content
    assert "Side Project" in content
    assert "Designer" in content
    assert "Viewer" in content
    assert "Other Agency" not in content


def test_home_without_teams_says_so(client, db):
    client.force_login(create_user())

    response = client.get(reverse("home"))

    assert "not in a team yet" in response.content.decode()


def test_home_rejects_post(client, designer):
    client.force_login(designer)

    assert client.post(reverse("home")).status_code == 405


def test_logout_rejects_get(client, designer):
    client.force_login(designer)

    assert client.get(reverse("logout")).status_code == 405
    assert "_auth_user_id" in client.session


def test_logout_by_post_ends_the_session(client, designer):
    client.force_login(designer)

    response = client.post(reverse("logout"))

    assert response.status_code == 302
    assert response.url == reverse("login")
    assert "_auth_user_id" not in client.session


def test_pages_show_a_logout_form_and_the_current_team(client, designer):
    client.force_login(designer)

    content = client.get(reverse("home")).content.decode()

    assert f'action="{reverse("logout")}"' in content
    assert 'method="post"' in content
    assert 'class="team-chip"' in content


def test_home_lists_the_models_from_the_catalog(client, designer):
    client.force_login(designer)
    page = client.get(reverse("home")).content.decode()
    assert "wan2.7-image-pro" in page and "qwen-image-2.0-pro" in page
    assert "Up to 9 input images, 2 regions each." in page
