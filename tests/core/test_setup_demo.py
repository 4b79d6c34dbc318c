import re
from io import StringIO

from django.contrib.auth.models import User
from django.core.management import call_command

from studio.accounts.models import Membership, Team


def run_setup_demo() -> str:
    out = StringIO()
    call_command("setup_demo", stdout=out)
    return out.getvalue()


def printed_password(output: str, username: str) -> str:
    match = re.search(rf"^\s*{username}\s+password: (\S+)", output, re.MULTILINE)
    assert match, output
    return match.group(1)


def test_it_creates_the_demo_team_and_accounts(db, monkeypatch):
    monkeypatch.delenv("STUDIO_DEMO_PASSWORD", raising=False)

    output = run_setup_demo()

    team = Team.objects.get(slug="demo")
    assert team.name == "Demo Studio"
    admin = User.objects.get(username="admin")
    assert admin.is_superuser
    assert admin.is_staff
    assert Membership.objects.get(team=team, user=admin).role == Membership.Role.OWNER
    designer = User.objects.get(username="designer")
    assert not designer.is_staff
    assert Membership.objects.get(team=team, user=designer).role == Membership.Role.DESIGNER
    assert admin.check_password(printed_password(output, "admin"))
    assert designer.check_password(printed_password(output, "designer"))


def test_it_prints_the_url_and_credentials(db, monkeypatch):
    monkeypatch.setenv("STUDIO_DEMO_PASSWORD", "demo-pass-123")

    output = run_setup_demo()

    assert "http://127.0.0.1:8000/" in output
    assert printed_password(output, "admin") == "demo-pass-123"
    assert printed_password(output, "designer") == "demo-pass-123"


def test_it_is_idempotent(db, monkeypatch):
    monkeypatch.delenv("STUDIO_DEMO_PASSWORD", raising=False)

    run_setup_demo()
    run_setup_demo()

    assert Team.objects.filter(slug="demo").count() == 1
    assert User.objects.filter(username__in=["admin", "designer"]).count() == 2
    assert Membership.objects.filter(team__slug="demo").count() == 2


def test_a_rerun_keeps_existing_passwords(db, monkeypatch):
    monkeypatch.setenv("STUDIO_DEMO_PASSWORD", "first-password")
    run_setup_demo()
    monkeypatch.delenv("STUDIO_DEMO_PASSWORD")

    output = run_setup_demo()

    assert output.count("password unchanged") == 2
    assert User.objects.get(username="admin").check_password("first-password")
    assert User.objects.get(username="designer").check_password("first-password")


def test_an_explicit_password_resets_existing_accounts(db, monkeypatch):
    monkeypatch.delenv("STUDIO_DEMO_PASSWORD", raising=False)
    run_setup_demo()
    monkeypatch.setenv("STUDIO_DEMO_PASSWORD", "new-password")

    output = run_setup_demo()

    assert "password unchanged" not in output
    assert User.objects.get(username="admin").check_password("new-password")


def test_it_names_the_port_make_run_serves_on(db, monkeypatch):
    monkeypatch.setenv("STUDIO_RUN_PORT", "8100")
    assert "Studio is at http://127.0.0.1:8100/" in run_setup_demo()
    monkeypatch.delenv("STUDIO_RUN_PORT")
    assert "Studio is at http://127.0.0.1:8000/" in run_setup_demo()
