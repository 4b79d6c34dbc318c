"""The client's retries, timeouts and refusals against faults the emulator injects.

All waiting happens on the emulator's fake clock: `emulated.sleeps` records each backoff.
"""

from __future__ import annotations

import time

import httpx
import pytest

from studio.dashscope.catalog import Endpoint
from studio.dashscope.client import DashScopeClient, RetryPolicy, Timeouts, tls_context
from studio.dashscope.emulator.config import FaultRule
from studio.dashscope.errors import DashScopeError, SubmitUncertain
from studio.dashscope.types import GenerationRequest, InputImage, TaskStatus
from studio.dashscope.wire import build_body
from tests.support.emulation import API_KEY, Emulated, make_image, png_size
from tests.support.servers import HelloCatcher

T2I = GenerationRequest(model="wan2.6-t2i", prompt="a lighthouse at dusk", size="1280*1280", n=2)


def inject(emulated: Emulated, *specs: str) -> None:
    emulated.emulator.config.faults = [FaultRule.parse(spec) for spec in specs]


def finished(emulated: Emulated, task_id: str):
    emulated.clock.advance(30)
    return emulated.client.fetch(task_id)


def test_submit_then_fetch_follows_a_task_to_its_images(emulated: Emulated):
    submitted = emulated.client.submit(T2I)
    assert submitted.status is TaskStatus.PENDING
    assert emulated.client.fetch(submitted.task_id).status is TaskStatus.PENDING
    emulated.clock.advance(1.5)
    assert emulated.client.fetch(submitted.task_id).status is TaskStatus.RUNNING
    result = finished(emulated, submitted.task_id)
    assert result.status is TaskStatus.SUCCEEDED
    assert result.usage.image_count == 2 and (result.usage.width, result.usage.height) == (
        1280,
        1280,
    )
    assert result.submit_time < result.scheduled_time < result.end_time
    for url in result.image_urls:
        assert png_size(emulated.client.download(url)) == (1280, 1280)


def test_the_async_header_and_key_are_sent_and_the_body_is_documented(emulated: Emulated):
    emulated.client.submit(T2I)
    entry = emulated.emulator.requests[-1]
    assert entry["headers"]["x-dashscope-async"] == "enable"
    assert entry["auth"] == "valid"
    assert entry["body"] == {
        "model": "wan2.6-t2i",
        "input": {"messages": [{"role": "user", "content": [{"text": "a lighthouse at dusk"}]}]},
        "parameters": {"size": "1280*1280", "n": 2},
    }


def test_legacy_bodies_keep_the_negative_prompt_in_input():
    request = GenerationRequest(
        model="wan2.5-i2i-preview",
        prompt="blend",
        negative_prompt="blurry",
        images=(InputImage.from_bytes(make_image(500, 500, fmt="JPEG")),),
        n=1,
    )
    body = build_body(request, Endpoint.IMAGE2IMAGE)
    assert body["input"]["negative_prompt"] == "blurry"
    assert body["input"]["images"][0].startswith("data:image/jpeg;base64,")
    assert body["parameters"] == {"n": 1}


@pytest.mark.parametrize("fault", ["429", "429-throttling", "500", "502", "503"])
def test_fetch_retries_throttling_and_server_errors_with_growing_backoff(emulated, fault):
    submitted = emulated.client.submit(T2I)
    inject(emulated, f"fetch:{fault}x3")
    result = emulated.client.fetch(submitted.task_id)
    assert result.task_id == submitted.task_id
    assert len(emulated.sleeps) == 3
    assert emulated.sleeps == sorted(emulated.sleeps) and emulated.sleeps[0] > 0


def test_jitter_keeps_backoff_between_half_and_all_of_the_ceiling(emulated: Emulated):
    policy = RetryPolicy(base_delay=1.0, max_delay=8.0)
    assert policy.delay(1, None, lambda: 0.0) == 0.5
    assert policy.delay(1, None, lambda: 1.0) == 1.0
    assert policy.delay(10, None, lambda: 1.0) == 8.0


def test_retry_after_is_honoured(emulated: Emulated):
    emulated.emulator.config.retry_after = 7
    inject(emulated, "submit:429x1")
    emulated.client.submit(T2I)
    assert emulated.sleeps == [7.0]
    assert len(emulated.task_ids()) == 1


def test_a_throttled_submit_is_retried_and_makes_exactly_one_task(emulated: Emulated):
    inject(emulated, "submit:429x2")
    submitted = emulated.client.submit(T2I)
    assert emulated.task_ids() == [submitted.task_id]
    assert len(emulated.sleeps) == 2


def test_an_exhausted_quota_is_not_retried(emulated: Emulated):
    inject(emulated, "submit:429-quota")
    with pytest.raises(DashScopeError) as error:
        emulated.client.submit(T2I)
    assert error.value.code == "Throttling.AllocationQuota"
    assert error.value.status == 429 and not error.value.retryable
    assert emulated.sleeps == [] and emulated.task_ids() == []


def test_retries_stop_after_the_last_attempt(emulated: Emulated):
    submitted = emulated.client.submit(T2I)
    inject(emulated, "fetch:503x*")
    with pytest.raises(DashScopeError) as error:
        emulated.client.fetch(submitted.task_id)
    assert error.value.code == "ModelUnavailable" and error.value.retryable
    assert len(emulated.sleeps) == emulated.client.retry.attempts - 1


def test_a_dropped_connection_on_fetch_is_retried(emulated: Emulated):
    submitted = emulated.client.submit(T2I)
    inject(emulated, "fetch:dropx2")
    assert emulated.client.fetch(submitted.task_id).task_id == submitted.task_id
    assert len(emulated.sleeps) == 2


@pytest.mark.parametrize(("fault", "tasks_made"), [("drop", 0), ("drop-after", 1)])
def test_a_dropped_submit_is_never_sent_twice(emulated: Emulated, fault, tasks_made):
    inject(emulated, f"submit:{fault}")
    with pytest.raises(SubmitUncertain) as error:
        emulated.client.submit(T2I)
    assert not error.value.retryable
    assert len(emulated.task_ids()) == tasks_made
    assert sum(1 for e in emulated.emulator.requests if e["method"] == "POST") == 1


def test_a_slow_fetch_times_out_and_is_retried_without_real_waiting(emulated: Emulated):
    submitted = emulated.client.submit(T2I)
    inject(emulated, "fetch:slow=45x1")  # longer than the 30 s read timeout
    before = emulated.clock.now()
    assert emulated.client.fetch(submitted.task_id).task_id == submitted.task_id
    assert emulated.clock.now() - before >= 30  # the fake clock moved; the test did not wait
    assert len(emulated.sleeps) == 1


def test_a_slow_answer_within_the_timeout_is_just_slow(emulated: Emulated):
    submitted = emulated.client.submit(T2I)
    inject(emulated, "fetch:slow=5x1")
    assert emulated.client.fetch(submitted.task_id).task_id == submitted.task_id
    assert emulated.sleeps == []


def test_a_slow_submit_is_uncertain_not_resent(emulated: Emulated):
    inject(emulated, "submit:slow=45x1")
    with pytest.raises(SubmitUncertain):
        emulated.client.submit(T2I)
    assert len(emulated.task_ids()) == 1


def test_a_gateway_timeout_on_submit_is_uncertain(emulated: Emulated):
    inject(emulated, "submit:504")
    with pytest.raises(SubmitUncertain):
        emulated.client.submit(T2I)


def test_a_sync_generation_is_retried_only_when_refused(emulated: Emulated):
    request = GenerationRequest(model="qwen-image-2.0", prompt="a sign", size="1024*1024", n=1)
    inject(emulated, "generate:429x1")
    assert emulated.client.generate(request).status is TaskStatus.SUCCEEDED
    inject(emulated, "generate:drop-after")
    with pytest.raises(SubmitUncertain):
        emulated.client.generate(request)


def test_a_sync_generation_sent_once_hands_a_refusal_back(emulated: Emulated):
    request = GenerationRequest(model="qwen-image-2.0", prompt="a sign", size="1024*1024", n=1)
    inject(emulated, "generate:429x1")
    with pytest.raises(DashScopeError) as refused:
        emulated.client.generate(request, once=True)
    assert refused.value.code == "Throttling.RateQuota" and refused.value.retryable
    assert [e["method"] for e in emulated.emulator.requests] == ["POST"]


def test_a_wrong_key_is_refused_once(emulated: Emulated):
    client = DashScopeClient(
        api_key="not-a-key",
        base_url="http://dashscope.emulator/api/v1",
        transport=emulated.transport,
        sleep=emulated.sleeps.append,
    )
    with pytest.raises(DashScopeError) as error:
        client.submit(T2I)
    assert (error.value.status, error.value.code) == (401, "InvalidApiKey")
    assert error.value.message == "Invalid API-key provided."
    assert error.value.request_id and emulated.sleeps == []


def test_cancel_works_while_pending_and_is_refused_after(emulated: Emulated):
    first = emulated.client.submit(T2I)
    emulated.client.cancel(first.task_id)
    assert emulated.client.fetch(first.task_id).status is TaskStatus.CANCELED
    second = emulated.client.submit(T2I)
    emulated.clock.advance(2)
    with pytest.raises(DashScopeError) as error:
        emulated.client.cancel(second.task_id)
    assert (error.value.status, error.value.code) == (400, "UnsupportedOperation")


def test_list_tasks_reads_the_flat_page(emulated: Emulated):
    ids = {emulated.client.submit(T2I).task_id for _ in range(3)}
    page = emulated.client.list_tasks(model="wan2.6-t2i", page_size=2)
    assert page.total == 3 and page.total_pages == 2 and len(page.tasks) == 2
    assert {t.task_id for t in page.tasks} <= ids
    assert all(t.status is TaskStatus.PENDING for t in page.tasks)


def test_an_expired_result_url_is_refused_and_not_retried(emulated: Emulated):
    result = finished(emulated, emulated.client.submit(T2I).task_id)
    emulated.clock.advance(25 * 3600)
    with pytest.raises(DashScopeError) as error:
        emulated.client.download(result.image_urls[0])
    assert (error.value.status, error.value.code) == (403, "AccessDenied")
    assert emulated.sleeps == []


def test_downloads_only_from_the_provider(emulated: Emulated):
    for url in (
        "http://169.254.169.254/latest/meta-data",
        "https://evil.example/x.png",
        "file:///etc/passwd",
        "http://dashscope.emulator.evil.example/results/x.png",
    ):
        with pytest.raises(DashScopeError) as error:
            emulated.client.download(url)
        assert error.value.code == "ResultURLRefused"
    client = emulated.client
    assert client.is_result_url(
        "https://dashscope-result-bj.oss-cn-beijing.aliyuncs.com/a.png?Expires=1&Signature=x"
    )
    assert not client.is_result_url("http://dashscope-result-bj.oss-cn-beijing.aliyuncs.com/a.png")


def test_a_tampered_signature_is_refused(emulated: Emulated):
    url = finished(emulated, emulated.client.submit(T2I).task_id).image_urls[0]
    forged = url[: url.index("Signature=") + len("Signature=")] + "Zm9yZ2Vk"
    with pytest.raises(DashScopeError) as error:
        emulated.client.download(forged)
    assert error.value.code == "SignatureDoesNotMatch"


def test_downloads_never_carry_the_api_key(emulated: Emulated):
    seen: list[httpx.Request] = []

    def spy(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return emulated.transport.handle_request(request)

    client = DashScopeClient(
        api_key=API_KEY,
        base_url="http://dashscope.emulator/api/v1",
        transport=httpx.MockTransport(spy),
    )
    result = client.generate(GenerationRequest(model="qwen-image-max", prompt="a sign", n=1))
    client.download(result.image_urls[0])
    api_call, download = seen
    assert api_call.headers["authorization"] == f"Bearer {API_KEY}"
    assert "authorization" not in download.headers


def test_an_answer_without_json_is_an_error_not_a_crash(emulated: Emulated):
    def html(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="<html>Bad Gateway</html>")

    client = DashScopeClient(
        api_key=API_KEY,
        base_url="http://x.test/api/v1",
        transport=httpx.MockTransport(html),
        sleep=lambda s: None,
    )
    with pytest.raises(DashScopeError) as error:
        client.fetch("0385dc79-5ff8-4d82-bcb6-000000000000")
    assert error.value.code == "Unknown" and "Bad Gateway" in error.value.message
    assert error.value.status == 502


# -- result downloads over real sockets: what the client dials, reads and refuses --------

OSS_HOST = "dashscope-result-bj.oss-cn-beijing.aliyuncs.com"
OSS_URL = f"https://{OSS_HOST}/a.png?Expires=1&Signature=c2lnbmVk"
PUBLIC = "47.88.1.10"  # an address an OSS bucket could have


def network_client(base_url: str = "https://dashscope-intl.aliyuncs.com/api/v1", **kwargs):
    """A client with no injected transport: downloads open real connections."""
    kwargs.setdefault("sleep", lambda s: None)
    return DashScopeClient(api_key=API_KEY, base_url=base_url, **kwargs)


@pytest.mark.parametrize(
    "answers",
    [
        ["169.254.169.254"],  # the cloud metadata service
        ["127.0.0.1"],
        ["::1"],
        ["10.0.0.5"],
        ["192.168.1.2"],
        ["100.100.100.200"],  # Alibaba Cloud's metadata service, in shared address space
        ["::ffff:169.254.169.254"],  # the same, written as IPv6
        [PUBLIC, "10.0.0.5"],  # one internal answer among public ones is enough
        [],
    ],
)
def test_a_provider_looking_host_that_resolves_inside_is_never_dialled(dials, answers):
    client = network_client(resolve=lambda host: answers)
    with pytest.raises(DashScopeError) as error:
        client.download(OSS_URL)
    assert error.value.code == "ResultURLRefused" and not error.value.retryable
    assert "internal address" in error.value.message and "Signature" not in str(error.value)
    assert dials.addresses == []


def test_the_address_dialled_is_the_address_checked_even_when_dns_changes_its_answer(dials):
    # DNS rebinding: a public answer for the check, the metadata service for the connection.
    answers = iter([[PUBLIC], ["169.254.169.254"]])
    asked: list[str] = []

    def rebinding(host: str) -> list[str]:
        asked.append(host)
        return next(answers)

    catcher = HelloCatcher()
    dials.routes[(PUBLIC, 443)] = ("127.0.0.1", catcher.port)
    client = network_client(resolve=rebinding)
    try:
        with pytest.raises(DashScopeError) as error:
            client.download(OSS_URL)
    finally:
        catcher.close()
    # The first try dialled the public address it had checked, and spoke TLS to it under
    # the bucket's name (the catcher hung up, so that try failed and was retried). The
    # retry resolved again, got the metadata address, and refused without dialling it.
    assert dials.addresses == [(PUBLIC, 443)]
    assert OSS_HOST.encode() in catcher.received  # the TLS server name (SNI)
    assert asked == [OSS_HOST, OSS_HOST]
    assert error.value.code == "ResultURLRefused"
    assert tls_context().check_hostname  # the certificate must name the bucket too


def test_a_redirect_from_a_result_url_is_not_followed(dials, result_server):
    client = network_client(route=result_server.route)
    with pytest.raises(DashScopeError) as error:
        client.download(result_server.url("redirect"))
    assert error.value.status == 302 and not error.value.retryable
    assert result_server.requests == ["/results/redirect.png?Expires=1&Signature=c2lnbmVk"]
    assert dials.addresses == [("127.0.0.1", result_server.port)]


def test_the_api_origin_is_not_trusted_for_downloads(dials, result_server):
    # Results come from the provider's buckets only; not even the API's own origin (the
    # emulator's, on the loopback) is a result host.
    client = network_client(f"http://127.0.0.1:{result_server.port}/api/v1")
    with pytest.raises(DashScopeError) as error:
        client.download(f"http://127.0.0.1:{result_server.port}/results/ok.png?Expires=1")
    assert error.value.code == "ResultURLRefused"
    routed = network_client(route=result_server.route)
    assert png_size(routed.download(result_server.url("ok"))) == (64, 64)
    assert dials.addresses == [("127.0.0.1", result_server.port)]


def test_an_endless_body_is_cut_off_at_the_byte_cap(dials, result_server):
    cap = 512 * 1024
    client = network_client(route=result_server.route, max_download_bytes=cap)
    started = time.monotonic()
    with pytest.raises(DashScopeError) as error:
        client.download(result_server.url("endless"))
    assert error.value.code == "ResultTooLarge" and not error.value.retryable
    assert time.monotonic() - started < 5
    # Read no further than the chunk that crossed the cap (httpcore reads 64 KiB at once).
    assert cap < dials.received <= cap + 2 * 64 * 1024
    assert len(dials.sockets) == 1


@pytest.mark.parametrize(
    ("behaviour", "code"), [("trickle", "DownloadTimeout"), ("silent", "ReadTimeout")]
)
def test_a_slow_body_is_cut_off_at_the_deadline(dials, result_server, behaviour, code):
    deadline = 1.0
    client = network_client(
        route=result_server.route,
        timeouts=Timeouts(download=deadline),
        retry=RetryPolicy(attempts=1),
    )
    started = time.monotonic()
    with pytest.raises(DashScopeError) as error:
        client.download(result_server.url(behaviour))
    elapsed = time.monotonic() - started
    assert code in f"{error.value.code}: {error.value.message}"
    assert error.value.retryable  # a slow bucket may be quicker next time
    assert deadline <= elapsed < deadline + 1.0
    assert dials.received < 64 * 1024


@pytest.mark.parametrize("behaviour", ["trickle", "silent"])
def test_a_download_gives_up_when_the_callers_time_is_up(dials, result_server, behaviour):
    # The whole download may take a minute and is tried four times; the caller has 1 s.
    client = network_client(route=result_server.route)
    started = time.monotonic()
    with pytest.raises(DashScopeError) as error:
        client.download(result_server.url(behaviour), within=1.0)
    elapsed = time.monotonic() - started
    assert error.value.retryable  # the caller tries again later
    assert 1.0 <= elapsed < 2.0
    with pytest.raises(DashScopeError) as error:
        client.download(result_server.url(behaviour), within=0)
    assert error.value.code == "DownloadTimeout"
    assert len(result_server.requests) == 1  # no time left: nothing was asked
