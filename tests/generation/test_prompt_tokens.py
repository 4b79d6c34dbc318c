"""Qwen prompts counted as the provider counts them: tokens of its own tokenizer.

Seed 000's curl sample for qwen-image-2.0-pro carries a 2,045-character prompt and is shown
working; it is the test data here, sent as written. A prompt one token over a limit is
refused by the form, the client and the emulator, each naming the same count.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from studio.dashscope.catalog import Endpoint
from studio.dashscope.errors import RequestRefused
from studio.dashscope.tokens import count_tokens
from studio.dashscope.types import GenerationRequest
from studio.generation.models import Job
from tests.support import prompts
from tests.support.prompts import BODY, PARAMETERS, SPEC, TEXT


def test_the_seed_sample_is_long_in_characters_and_short_in_tokens():
    assert len(TEXT) == 2045 and count_tokens(TEXT) == 439


def test_the_seed_sample_is_accepted_by_the_emulator_as_written(emulated):
    answer = emulated.post(Endpoint.MULTIMODAL_GENERATION, BODY)
    assert answer.status_code == 200, answer.text
    assert answer.json()["usage"]["image_count"] == 1


def test_the_seed_sample_is_accepted_by_the_client(emulated):
    request = GenerationRequest(
        model=BODY["model"],
        prompt=TEXT,
        negative_prompt=PARAMETERS["negative_prompt"],
        size=PARAMETERS["size"],
        prompt_extend=PARAMETERS["prompt_extend"],
        watermark=PARAMETERS["watermark"],
    )
    result = emulated.client.generate(request)
    assert len(result.image_urls) == 1


@pytest.fixture
def designer_client(client, member, media):
    client.force_login(member.user)
    return client


def generate(client, prompt: str):
    return client.post(
        reverse("generate"),
        {
            "model": SPEC.name,
            "prompt": prompt,
            "negative_prompt": PARAMETERS["negative_prompt"],
            "size": PARAMETERS["size"],
            "n": 1,
            "prompt_extend": "on",
        },
    )


def test_the_seed_sample_is_accepted_by_the_form(designer_client):
    response = generate(designer_client, TEXT)
    assert response.status_code in (200, 302)
    job = Job.objects.get()
    assert job.prompt == TEXT and job.parameters["size"] == "2048*2048"


def test_one_token_over_is_refused_by_form_client_and_emulator_with_the_same_count(
    designer_client, emulated
):
    over = prompts.one_over(SPEC)
    # The model by the name people read it; the emulator answers as the provider would.
    said = f"The prompt is {SPEC.prompt_max + 1:,} tokens; Qwen-Image 2.0 Pro takes at most"

    page = generate(designer_client, over).content.decode()
    assert not Job.objects.exists() and said in page

    request = GenerationRequest(model=SPEC.name, prompt=over, size="1024*1024")
    with pytest.raises(RequestRefused) as refused:
        emulated.client.generate(request)
    assert said in str(refused.value)

    body = {**BODY, "input": {"messages": [{"role": "user", "content": [{"text": over}]}]}}
    answer = emulated.post(Endpoint.MULTIMODAL_GENERATION, body)
    assert answer.status_code == 400 and answer.json()["code"] == "InvalidParameter"
    assert f"{SPEC.prompt_max + 1:,} tokens" in answer.json()["message"]

    # Exactly at the limit passes all three.
    at_limit = prompts.longest(SPEC)
    assert emulated.post(
        Endpoint.MULTIMODAL_GENERATION,
        {**BODY, "input": {"messages": [{"role": "user", "content": [{"text": at_limit}]}]}},
    ).is_success


@pytest.mark.parametrize(
    "text", ["a cat", "  a cat  ", "a\r\ncat\r\n", "画🎨 poster, 50% off!", " " * 10, ""]
)
def test_the_forms_counter_shows_the_count_the_server_checks(designer_client, text):
    answer = designer_client.post(reverse("count-prompt"), {"model": SPEC.name, "text": text})
    sent = text.replace("\r\n", "\n")  # as the form sends a line break
    assert answer.json() == {"count": count_tokens(sent), "max": 1300, "unit": "tokens"}


def test_character_limits_count_code_points_and_keep_spaces(designer_client):
    answer = designer_client.post(
        reverse("count-prompt"), {"model": "wan2.7-image-pro", "text": " 画🎨 \r\n"}
    )
    assert answer.json() == {"count": 5, "max": 5000, "unit": "characters"}


def test_the_counter_needs_a_signed_in_person(client):
    answer = client.post(reverse("count-prompt"), {"model": SPEC.name, "text": "a cat"})
    assert answer.status_code == 302


def test_the_counter_is_for_people_who_may_generate(client, team, viewer):
    client.force_login(viewer)
    answer = client.post(reverse("count-prompt"), {"model": SPEC.name, "text": "a cat"})
    assert answer.status_code == 403
