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
