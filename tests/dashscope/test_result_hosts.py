"""Result downloads accept the hosts the provider really sends, and nothing else.

The emulator serves its results under OSS-style names over TLS from an authority of its
own; the studio routes those names to it (and trusts that authority) only when the
emulator stands in for the provider. So every download here passes the host rule, the
address check and certificate verification, as one from the real buckets would.
"""

from __future__ import annotations

import pytest

from studio.dashscope.catalog import Endpoint
from studio.dashscope.client import DEFAULT_RESULT_HOSTS, DashScopeClient, host_rule
from studio.dashscope.errors import DashScopeError
from studio.dashscope.guard import EmulatorRoute, emulator_route
from studio.dashscope.types import GenerationRequest
from tests.support.emulation import API_KEY, ServedEmulator, png_size
from tests.support.environment import load_settings

# The seeds' result hosts (S0:190, S0:360, S0:435), seed 002's pattern (S2:287, S2:591),
# and a host of the kind real wan answers come from.
PROVIDER_HOSTS = [
    "dashscope-result-wlcb.oss-cn-wulanchabu.aliyuncs.com",
    "dashscope-result-sh.oss-cn-shanghai.aliyuncs.com",
    "dashscope-result-bj.oss-cn-beijing.aliyuncs.com",
    "dashscope-7c2c.oss-accelerate.aliyuncs.com",
]

LOOKALIKES = [
    "https://dashscope-1.oss-x.aliyuncs.com.evil.example/a.png",
    "https://evil.example/aliyuncs.com/a.png",
    "https://evil.example/dashscope-1.oss-x.aliyuncs.com/a.png",
    "https://dashscope-1.oss-x.aliyuncs.com@evil.example/a.png",
    "https://user:pass@dashscope-1.oss-x.aliyuncs.com/a.png",
    "https://evil.example\\@dashscope-1.oss-x.aliyuncs.com/a.png",
    "https://47.88.1.1/a.png",
    "https://[::ffff:a9fe:a9fe]/a.png",
    "http://dashscope-1.oss-x.aliyuncs.com/a.png",
    "https://dashscope-1.oss-x.aliyuncs.com:8443/a.png",
    "https://dashscope-1.oss-x.aliyuncs.com./a.png",
    "https://dashscope.oss-x.aliyuncs.com/a.png",
    "https://dashscope-1.oss-x.aliyuncs.co/a.png",
    "https://xdashscope-1.oss-x.aliyuncs.com/a.png",
    "https://dashscope-1.evil.oss-x.aliyuncs.com/a.png",
    "ftp://dashscope-1.oss-x.aliyuncs.com/a.png",
    "//dashscope-1.oss-x.aliyuncs.com/a.png",
]


def client(**kwargs) -> DashScopeClient:
    kwargs.setdefault("sleep", lambda seconds: None)
    return DashScopeClient(
        api_key=API_KEY, base_url="https://dashscope-intl.aliyuncs.com/api/v1", **kwargs
    )


@pytest.mark.parametrize("host", PROVIDER_HOSTS)
def test_the_provider_result_hosts_are_accepted(host):
    assert client().is_result_url(f"https://{host}/1d/2f/result.png?Expires=1&Signature=x")


@pytest.mark.parametrize("url", LOOKALIKES)
def test_lookalike_result_urls_are_refused_before_anything_is_dialled(url, dials):
    with pytest.raises(DashScopeError) as refused:
        client().download(url)
    assert refused.value.code == "ResultURLRefused" and not refused.value.retryable
    assert dials.addresses == []


def test_a_host_the_provider_adds_later_is_allowed_by_the_setting():
    new_bucket = "https://results-7c2c.dashscope.aliyuncs.com/a.png?Expires=1"
    assert not client().is_result_url(new_bucket)
    patterns = [*DEFAULT_RESULT_HOSTS, "results-*.dashscope.aliyuncs.com"]
    assert client(result_hosts=patterns).is_result_url(new_bucket)


@pytest.mark.parametrize("pattern", ["*", "*.com", "*.aliyuncs.com", "evil.example/x", "a..b.com"])
def test_a_result_host_pattern_too_wide_or_not_a_host_is_refused(pattern):
    with pytest.raises(ValueError, match="not a result host pattern"):
        host_rule([pattern])


def test_a_bad_result_host_setting_stops_the_studio_with_a_clear_message():
    loaded = load_settings(DJANGO_DEBUG="true", STUDIO_RESULT_HOSTS="*.com")
    assert loaded.returncode != 0
    assert "STUDIO_RESULT_HOSTS" in loaded.stderr and "not a result host pattern" in loaded.stderr


@pytest.mark.parametrize(
    "base_url",
    [
        "https://dashscope-intl.aliyuncs.com/api/v1",
        "https://dashscope-intl.aliyuncs.com:443/api/v1",
        "https://DASHSCOPE.ALIYUNCS.COM/api/v1",
        "https://dashscope.aliyuncs.com./api/v1",
        "https://ws-1.ap-southeast-1.maas.aliyuncs.com/api/v1",
    ],
)
def test_the_emulator_route_is_refused_with_the_real_service(base_url):
    loaded = load_settings(
        DJANGO_DEBUG="true", DASHSCOPE_EMULATED="true", DASHSCOPE_BASE_URL=base_url
    )
    assert loaded.returncode != 0 and "DASHSCOPE_EMULATED" in loaded.stderr


# -- through the full guard, from the served emulator ------------------------------------


def made_urls(served: ServedEmulator, n: int = 4) -> list[str]:
    """Result URLs of one sync generation on the served emulator."""
    route = emulator_route(served.base_url)
    api = DashScopeClient(api_key=API_KEY, base_url=served.base_url, route=route)
    request = GenerationRequest(model="wan2.6-t2i", prompt="A lighthouse", size="1280*1280", n=n)
    with api:
        return list(api.generate(request).image_urls)


def test_results_download_from_realistic_hosts_through_the_full_guard(served_emulator):
    urls = made_urls(served_emulator)
    hosts = {url.split("/")[2] for url in urls}
    # The emulator writes both kinds of bucket, and the client takes both.
    assert "dashscope-result-sh.oss-cn-shanghai.aliyuncs.com" in hosts
    assert any(host.endswith(".oss-accelerate.aliyuncs.com") for host in hosts)
    assert all(url.startswith("https://") and "OSSAccessKeyId=" in url for url in urls)
    route = emulator_route(served_emulator.base_url)
    with DashScopeClient(api_key=API_KEY, base_url=served_emulator.base_url, route=route) as api:
        for url in urls:
            assert png_size(api.download(url)) == (1280, 1280)


def test_the_address_check_runs_on_the_emulators_route(served_emulator):
    url = made_urls(served_emulator, n=1)[0]
    host = url.split("/")[2]
    route = emulator_route(served_emulator.base_url)
    inside = EmulatorRoute(
        host=route.host, port=route.port, ca_pem=route.ca_pem, addresses=((host, "10.0.0.5"),)
    )
    with (
        DashScopeClient(api_key=API_KEY, base_url=served_emulator.base_url, route=inside) as api,
        pytest.raises(DashScopeError) as refused,
    ):
        api.download(url)
    assert refused.value.code == "ResultURLRefused"


def test_a_certificate_from_another_authority_is_not_trusted(served_emulator):
    url = made_urls(served_emulator, n=1)[0]
    route = emulator_route(served_emulator.base_url)
    import trustme

    stranger = EmulatorRoute(host=route.host, port=route.port, ca_pem=trustme.CA().cert_pem.bytes())
    with (
        DashScopeClient(
            api_key=API_KEY, base_url=served_emulator.base_url, route=stranger, sleep=lambda s: None
        ) as api,
        pytest.raises(DashScopeError) as refused,
    ):
        api.download(url)
    assert refused.value.code == "ResultTLSFailed" and refused.value.retryable


def test_in_process_results_pass_the_same_host_rule(emulated):
    response = emulated.post(
        Endpoint.MULTIMODAL_GENERATION,
        {
            "model": "wan2.6-t2i",
            "input": {"messages": [{"role": "user", "content": [{"text": "A lighthouse"}]}]},
            "parameters": {"size": "1280*1280", "n": 2},
        },
    )
    urls = [
        choice["message"]["content"][0]["image"] for choice in response.json()["output"]["choices"]
    ]
    for url in urls:
        assert emulated.client.is_result_url(url), url
        assert png_size(emulated.client.download(url)) == (1280, 1280)
