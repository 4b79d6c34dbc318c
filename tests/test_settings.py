import pytest
from django.core.exceptions import ImproperlyConfigured

from studio.settings import dashscope_base_url, env_bool, env_int, env_list, env_str
from tests.support.environment import load_settings


@pytest.mark.parametrize(("raw", "expected"), [("true", True), ("FALSE", False), ("1", True)])
def test_env_bool_reads_true_and_false(monkeypatch, raw, expected):
    monkeypatch.setenv("STUDIO_TEST_FLAG", raw)

    assert env_bool("STUDIO_TEST_FLAG", not expected) is expected


def test_env_bool_uses_the_default_when_unset(monkeypatch):
    monkeypatch.delenv("STUDIO_TEST_FLAG", raising=False)

    assert env_bool("STUDIO_TEST_FLAG", True) is True


def test_env_bool_rejects_other_values(monkeypatch):
    monkeypatch.setenv("DJANGO_DEBUG", "maybe")

    with pytest.raises(ImproperlyConfigured, match="DJANGO_DEBUG"):
        env_bool("DJANGO_DEBUG", False)


def test_env_str_without_a_default_is_required(monkeypatch):
    monkeypatch.delenv("STUDIO_TEST_VALUE", raising=False)

    with pytest.raises(ImproperlyConfigured, match="STUDIO_TEST_VALUE"):
        env_str("STUDIO_TEST_VALUE")
    assert env_str("STUDIO_TEST_VALUE", "fallback") == "fallback"


def test_env_list_splits_on_commas(monkeypatch):
    monkeypatch.setenv("STUDIO_TEST_HOSTS", " a.example , b.example,")

    assert env_list("STUDIO_TEST_HOSTS", []) == ["a.example", "b.example"]


def test_env_list_rejects_an_empty_list(monkeypatch):
    monkeypatch.setenv("STUDIO_TEST_HOSTS", " , ")

    with pytest.raises(ImproperlyConfigured):
        env_list("STUDIO_TEST_HOSTS", ["default"])


def test_an_empty_value_as_a_dotenv_file_writes_it_is_the_default(monkeypatch):
    monkeypatch.setenv("STUDIO_TEST_HOSTS", "")
    monkeypatch.setenv("STUDIO_TEST_NUMBER", " ")

    assert env_list("STUDIO_TEST_HOSTS", ["default"]) == ["default"]
    assert env_int("STUDIO_TEST_NUMBER", 7) == 7


@pytest.mark.parametrize(
    ("region", "url"),
    [
        ("ap-southeast-1", "https://dashscope-intl.aliyuncs.com/api/v1"),
        ("cn-beijing", "https://dashscope.aliyuncs.com/api/v1"),
    ],
)
def test_each_region_has_its_own_base_url(region, url):
    assert dashscope_base_url(region) == url


def test_an_explicit_base_url_wins_over_the_region():
    assert dashscope_base_url("cn-beijing", "http://127.0.0.1:8765/api/v1") == (
        "http://127.0.0.1:8765/api/v1"
    )


def test_an_unknown_region_is_rejected():
    with pytest.raises(ImproperlyConfigured, match="DASHSCOPE_REGION"):
        dashscope_base_url("us-east-1")


def test_settings_follow_the_region_and_base_url_variables():
    beijing = load_settings(DJANGO_DEBUG="true", DASHSCOPE_REGION="cn-beijing")
    explicit = load_settings(
        DJANGO_DEBUG="true",
        DASHSCOPE_REGION="cn-beijing",
        DASHSCOPE_BASE_URL="http://127.0.0.1:8765/api/v1",
    )

    assert beijing.stdout.split() == ["True", "https://dashscope.aliyuncs.com/api/v1"]
    assert explicit.stdout.split() == ["True", "http://127.0.0.1:8765/api/v1"]


def test_settings_reject_a_bad_debug_value():
    result = load_settings(DJANGO_DEBUG="maybe")

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr


def test_settings_require_a_secret_key_when_debug_is_off():
    result = load_settings(DJANGO_DEBUG="false")

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def email_settings(**env: str) -> list[str]:
    """The email settings a fresh interpreter reads from `env` (with a throwaway key)."""
    import os
    import subprocess
    import sys

    from tests.support.environment import REPO_ROOT

    clean = {k: v for k, v in os.environ.items() if not k.startswith(("EMAIL_", "DJANGO_"))}
    script = (
        "import studio.settings as s; "
        "print(s.EMAIL_BACKEND, s.EMAIL_HOST or '-', s.EMAIL_PORT, s.EMAIL_USE_TLS, "
        "s.STUDIO_BASE_URL)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        env={**clean, "DJANGO_SECRET_KEY": "x", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_email_goes_to_the_console_unless_an_smtp_host_is_set():
    assert email_settings() == [
        "django.core.mail.backends.console.EmailBackend",
        "-",
        "587",
        "True",
        "http://localhost:8000",
    ]
    assert email_settings(
        EMAIL_HOST="smtp.example.com",
        EMAIL_PORT="465",
        EMAIL_USE_TLS="false",
        STUDIO_BASE_URL="https://studio.example.com",
    ) == [
        "django.core.mail.backends.smtp.EmailBackend",
        "smtp.example.com",
        "465",
        "False",
        "https://studio.example.com",
    ]
