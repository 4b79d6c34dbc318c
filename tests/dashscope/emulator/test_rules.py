"""The emulator's rules are its own: written from the documents, not imported from the
client, compared with the client's catalog limit by limit, and played against the
documents' own sample requests.

Every difference between the client and the emulator must be one that docs/provider.md
lists in its table of known differences, with the same values; a row there that no longer
differs fails too.
"""

from __future__ import annotations

import ast
import base64
import json
import math
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from studio.dashscope import catalog
from studio.dashscope.emulator import Emulator, EmulatorConfig, EmulatorTransport, FakeClock
from studio.dashscope.emulator import rules as emulator_rules
from studio.dashscope.emulator.rules import STRICT, Reading, parse_readings
from tests.support.emulation import API_KEY, Emulated, make_image, start_served_emulator, stop

ROOT = Path(__file__).resolve().parents[3]
EMULATOR_DIR = ROOT / "studio" / "dashscope" / "emulator"
PROVIDER_DOC = ROOT / "docs" / "provider.md"
SEEDS = ROOT.parent / "shared" / "seeds"
FORBIDDEN = ("studio.dashscope.validation", "studio.dashscope.catalog")
E1 = emulator_rules.Endpoint.MULTIMODAL_GENERATION
E2 = emulator_rules.Endpoint.IMAGE_GENERATION
E3 = emulator_rules.Endpoint.TEXT2IMAGE


# -- (i) the emulator imports nothing of the client's rules --------------------------------


def _module_file(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def _imports(path: Path, module: str) -> set[str]:
    """Every studio module a file imports, anywhere in it (functions included)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            # `from studio.dashscope import catalog` imports a module by its attribute name.
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return {name for name in found if name.startswith("studio") and _module_file(name)}


def _reached_from(start: str) -> dict[str, list[str]]:
    """The studio modules a module reaches through imports, each with the chain to it.
    A module's package __init__ runs first, so each parent package is reached too."""
    chains = {start: [start]}
    todo = [start]
    while todo:
        module = todo.pop()
        path = _module_file(module)
        assert path is not None, module
        parents = [module.rsplit(".", depth)[0] for depth in range(1, module.count(".") + 1)]
        for name in _imports(path, module) | set(parents):
            if name not in chains and _module_file(name):
                chains[name] = [*chains[module], name]
                todo.append(name)
    return chains


@pytest.mark.parametrize(
    "module",
    sorted(f"studio.dashscope.emulator.{p.stem}" for p in EMULATOR_DIR.glob("*.py")),
)
def test_no_emulator_module_imports_the_clients_rules(module):
    chains = _reached_from(module.removesuffix(".__init__"))
    for forbidden in FORBIDDEN:
        assert forbidden not in chains, " -> ".join(chains[forbidden])


def test_the_emulator_runs_without_loading_the_clients_rules():
    """In a fresh interpreter: import the emulator and serve a Qwen request (the token
    count loads its tokenizer), then look at what was loaded."""
    script = f"""
import json, sys
import httpx
from studio.dashscope.emulator import Emulator, EmulatorConfig, EmulatorTransport, FakeClock
emulator = Emulator(EmulatorConfig(running_seconds=0), clock=FakeClock())
http = httpx.Client(base_url="http://emulator.test/api/v1", transport=EmulatorTransport(emulator))
body = {{"model": "qwen-image-2.0-pro", "input": {{"messages": [{{"role": "user",
        "content": [{{"text": "a poster"}}]}}]}}, "parameters": {{"size": "1024*1024"}}}}
answer = http.post("{E1.value}", json=body, headers={{"Authorization": "Bearer {API_KEY}"}})
assert answer.status_code == 200, answer.text
print(json.dumps(sorted(m for m in sys.modules if m.startswith("studio"))))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert "studio.dashscope.emulator.rules" in loaded
    for forbidden in FORBIDDEN:
        assert forbidden not in loaded


# -- (ii) the client's catalog and the emulator's table, limit by limit --------------------


def _span(low: int, high: int) -> str:
    return str(low) if low == high else f"{low}–{high}"


def _pixels(count: int) -> str:
    if not count:
        return "none"
    side = math.isqrt(count)
    return f"{side}²" if side * side == count else f"{count:,}"


def _aspect(aspect: Any) -> str:
    if aspect is None:
        return "unrestricted"
    low, high = aspect.low, aspect.high
    return f"{low}:{high}–{high}:{low}"


def _endpoint(endpoint: Any) -> str:
    return "none" if endpoint is None else endpoint.value


def _sizes(sizes: tuple[tuple[int, int], ...]) -> str:
    return ", ".join(f"{w}*{h}" for w, h in sizes) or "none"


def _tiers(tiers: dict[str, int]) -> str:
    return ", ".join(f"{name}={side}²" for name, side in tiers.items()) or "none"


def _words(values: Iterable[object]) -> str:
    return ", ".join(sorted(str(v) for v in values)) or "none"


def _side(value: int) -> str:
    return str(value) if value else "none"


def _size_limits(r: Any) -> dict[str, str]:
    """A client SizeRule or the emulator's: the same field names, read alike."""
    return {
        "size default": r.default,
        "size tiers": _tiers(r.tiers),
        "text-to-image-only tiers": _words(r.text_to_image_only_tiers),
        "fixed sizes": _sizes(r.fixed),
        "min pixels": _pixels(r.min_pixels),
        "max pixels": _pixels(r.max_pixels),
        "max pixels text-to-image": _pixels(r.max_pixels_text_to_image or r.max_pixels),
        "size min side": _side(r.min_side),
        "size max side": _side(r.max_side),
        "size aspect": _aspect(r.aspect),
        "snap": str(r.snap),
        "follows last image": "yes" if r.follows_last_image else "no",
    }


def _image_limits(r: Any) -> dict[str, str]:
    """A client ImageInputRule or the emulator's ImageRule, or None: text only."""
    if r is None:
        return {"input images": "none"}
    return {
        "input images": _span(*r.count),
        "input min side": str(r.min_side),
        "input max side": str(r.max_side),
        "input max bytes": f"{r.max_bytes:,}",
        "input aspect": _aspect(r.aspect),
        "input formats": ", ".join(r.formats),
        "input alpha": "accepted" if r.alpha else "refused",
    }


def client_limits(spec: catalog.ModelSpec) -> dict[str, str]:
    """The client's catalog entry, as what it sends."""
    negative = spec.negative_prompt_max_chars
    sequential = spec.n_sequential
    return {
        "aliases": _words(spec.aliases),
        "sync endpoint": _endpoint(spec.sync_endpoint),
        "async endpoint": _endpoint(spec.async_endpoint),
        "prompt limit": f"{spec.prompt_max} {spec.prompt_unit.value}",
        "negative prompt limit": f"{negative} characters" if negative else "none",
        **_image_limits(spec.images),
        **_size_limits(spec.size),
        "n": _span(spec.n.min, spec.n.max),
        "n default": str(spec.n.default),
        # The client holds a model to one n range on either path.
        "n async": _span(spec.n.min, spec.n.max) if spec.async_endpoint else "none",
        "n sequential": (
            f"{_span(sequential.min, sequential.max)}, default {sequential.default}"
            if sequential
            else "none"
        ),
        "options": _words(option.value for option in spec.options),
        "result shape": spec.result_shape.value,
        "boxes per image": str(spec.max_boxes_per_image),
        "palette colours": (
            _span(*spec.color_palette_items)
            if catalog.Option.COLOR_PALETTE in spec.options
            else "none"
        ),
    }


def emulator_limits(model: emulator_rules.ModelRules) -> dict[str, str]:
    """The emulator's table entry, as what it accepts in its default reading."""
    negative = model.negative_prompt
    sequential = model.n_sequential
    n_async = model.n_async or model.n
    return {
        "aliases": _words(model.aliases),
        "sync endpoint": _endpoint(model.sync_endpoint),
        "async endpoint": _endpoint(model.async_endpoint),
        "prompt limit": f"{model.prompt.max} {model.prompt.unit.value}",
        "negative prompt limit": f"{negative.max} {negative.unit.value}" if negative else "none",
        **_image_limits(model.images),
        **_size_limits(model.size),
        "n": _span(model.n.low, model.n.high),
        "n default": str(model.n.default),
        "n async": _span(n_async.low, n_async.high) if model.async_endpoint else "none",
        "n sequential": (
            f"{_span(sequential.low, sequential.high)}, default {sequential.default}"
            if sequential
            else "none"
        ),
        "options": _words(option.value for option in model.options),
        "result shape": model.result_shape.value,
        "boxes per image": str(model.max_boxes_per_image),
        "palette colours": (
            _span(*model.palette_colours)
            if emulator_rules.Option.COLOR_PALETTE in model.options
            else "none"
        ),
    }


def differences() -> dict[tuple[str, str], tuple[str, str]]:
    """(model, limit) -> (client, emulator) for every limit where the two disagree."""
    client_models = {spec.name for spec in catalog.MODELS}
    emulator_models = {model.name for model in emulator_rules.MODELS}
    found: dict[tuple[str, str], tuple[str, str]] = {}
    for name in sorted(client_models ^ emulator_models):
        found[(name, "model")] = (
            "yes" if name in client_models else "none",
            "yes" if name in emulator_models else "none",
        )
    for spec in catalog.MODELS:
        model = emulator_rules.model_rules(spec.name)
        if model is None:
            continue
        ours, theirs = client_limits(spec), emulator_limits(model)
        for limit in ours.keys() | theirs.keys():
            pair = (ours.get(limit, "none"), theirs.get(limit, "none"))
            if pair[0] != pair[1]:
                found[(spec.name, limit)] = pair
    return found


def _cells(line: str) -> list[str]:
    return [cell.strip().strip("`").strip() for cell in line.strip().strip("|").split("|")]


def known_differences() -> dict[tuple[str, str], tuple[str, str]]:
    """The table "Known differences between the client and the emulator" of
    docs/provider.md: (model, limit) -> (client, emulator), one key per model of a row."""
    lines = PROVIDER_DOC.read_text(encoding="utf-8").splitlines()
    start = next(
        i for i, line in enumerate(lines) if line.startswith("#") and "Known differences" in line
    )
    rows = [line for line in lines[start:] if line.startswith("|")]
    header = [cell.lower() for cell in _cells(rows[0])]
    assert header == ["model", "limit", "client", "emulator", "reason"], header
    known: dict[tuple[str, str], tuple[str, str]] = {}
    for row in rows[2:]:
        models, limit, client, emulator, reason = _cells(row)
        assert reason, f"the row for {models} / {limit} gives no reason"
        for model in (m.strip().strip("`") for m in models.split(",")):
            known[(model, limit)] = (client, emulator)
    return known


def test_every_difference_between_client_and_emulator_is_a_known_one():
    known = known_differences()
    unexplained = [
        f"{model} / {limit}: client {client!r}, emulator {emulator!r}"
        for (model, limit), (client, emulator) in sorted(differences().items())
        if (model, limit) not in known
    ]
    assert not unexplained, (
        "Differences not listed in docs/provider.md's known-differences table:\n"
        + "\n".join(unexplained)
    )


def test_the_known_differences_table_is_true_and_current():
    found = differences()
    for key, listed in sorted(known_differences().items()):
        assert key in found, f"{key[0]} / {key[1]} is listed as a difference but agrees"
        assert listed == found[key], f"{key[0]} / {key[1]}: listed {listed}, is {found[key]}"


def test_the_strictest_readings_are_exactly_what_the_client_sends():
    """The client holds itself to the strictest documented reading, and to nothing
    tighter: under `--seed-reading strict` the emulator's table is the client's."""
    found = []
    for spec in catalog.MODELS:
        model = emulator_rules.model_rules(spec.name, STRICT)
        assert model is not None, spec.name
        ours, theirs = client_limits(spec), emulator_limits(model)
        found += [
            f"{spec.name} / {k}: {ours[k]!r} vs {theirs[k]!r}" for k in ours if ours[k] != theirs[k]
        ]
    assert not found, "\n".join(found)


# -- (iii) the documents' own sample requests, posted as written ---------------------------

# seed 000's qwen-image-2.0-pro curl request (sync): the `--data` of S0:306-326, verbatim.
QWEN_2_PRO_SYNC = r"""{
    "model": "qwen-image-2.0-pro",
    "input": {
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "text": "A winter street scene in Beijing featuring two adjacent traditional Chinese shops with gray-tiled roofs and vermilion-red exterior walls standing side by side. Warm-glow lanterns adorned with paper-cut horse motifs hang beneath the eaves, casting soft halos under overcast diffused light that gently reflects off the damp cobblestone pavement. On the left is a calligraphy shop: an aged indigo signboard bears the bold running-script characters “Text Rendering.” A vertical scroll on the storefront glass reads from top to bottom in Tian Yingzhang’s hard-pen style: “Professional Slides, Bilingual Posters, Advanced Infographics,” stamped with a cinnabar seal reading “1k token.” Inside, three vertically mounted calligraphy works are faintly visible on the wall—the first says “Alibaba,” the second “Qwen,” and the third “Image Generation.” An elderly white-haired man stands with his back to the camera, admiring the art. On the right is a flower shop whose sign spells out “Realistic Texture” using fresh blooms. Multi-tiered shelves inside display red roses, pink peonies, and greenery. A circular floral-patterned badge on the door reads “2k resolution,” and a colorful neon sign at the entrance displays the text “Detailed Depiction: People, Nature, Architecture.” Between the two shops sits a snowman holding an old-fashioned chalkboard with the words “Qwen-Image-2.0 Officially Released” scrawled in chalk. On the left side of the street, a young couple leans close together—the woman has a slender face, wears a beige cashmere coat and nude-toned sheer tights, and holds a transparent heart-shaped balloon printed with white text: “Image Generation and Editing in One.” Inside the balloon is a fluffy capybara plush toy. The man wears a well-tailored dark gray wool overcoat layered over a light turtleneck sweater. On the right side of the street, a delivery rider speeds past with “Smaller Model, Faster Speed” written across his back. The entire street blends dynamic motion with serene stillness through interwoven light and shadow."
                    }
                ]
            }
        ]
    },
    "parameters": {
        "negative_prompt": "Low resolution, low quality, distorted limbs, malformed fingers, oversaturated colors, wax-figure appearance, lack of facial detail, excessive smoothness, AI-looking artifacts, chaotic composition, blurry or warped text.",
        "prompt_extend": true,
        "watermark": false,
        "size": "2048*2048"
    }
}"""  # noqa: E501


# seed 000's wan2.6-t2i curl request (async submit): the `--data` of S0:565-586, verbatim.
WAN26_T2I_ASYNC = r"""{
    "model": "wan2.6-t2i",
    "input": {
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "text": "A flower shop with exquisite windows, a beautiful wooden door, and flowers on display"
                    }
                ]
            }
        ]
    },
    "parameters": {
        "prompt_extend": true,
        "watermark": false,
        "n": 1,
        "negative_prompt": "",
        "size": "1280*1280"
    }
}"""  # noqa: E501


# seed 002's wan2.7-image-pro curl request (sync): the `--data` of S2:258-277, verbatim.
WAN27_PRO_SYNC = r"""{
"model": "wan2.7-image-pro",
"input": {
"messages": [
{
"role": "user",
"content": [
{"image": "https://help-static-aliyun-doc.aliyuncs.com/file-manage-files/zh-CN/20251229/pjeqdf/car.webp"},
{"image": "https://help-static-aliyun-doc.aliyuncs.com/file-manage-files/zh-CN/20251229/xsunlm/paint.webp"},
{"text": "イメージ 2 のグラフィティをイメージ 1 の車にスプレーで描いてください"}
]
}
]
},
"parameters": {
"size": "2K",
"n": 1,
"watermark": false
}
}"""


# seed 002's wan2.7-image-pro curl request (async submit): the `--data` of S2:541-560, verbatim.
WAN27_PRO_ASYNC = r"""{
"model": "wan2.7-image-pro",
"input": {
"messages": [
{
"role": "user",
"content": [
{"image": "https://help-static-aliyun-doc.aliyuncs.com/file-manage-files/zh-CN/20251229/pjeqdf/car.webp"},
{"image": "https://help-static-aliyun-doc.aliyuncs.com/file-manage-files/zh-CN/20251229/xsunlm/paint.webp"},
{"text": "イメージ 2 のグラフィティをイメージ 1 の車にスプレーで描画してください"}
]
}
]
},
"parameters": {
"size": "2K",
"n": 1,
"watermark": false
}
}"""


CAR = "https://help-static-aliyun-doc.aliyuncs.com/file-manage-files/zh-CN/20251229/pjeqdf/car.webp"
PAINT = (
    "https://help-static-aliyun-doc.aliyuncs.com/file-manage-files/zh-CN/20251229/xsunlm/paint.webp"
)
# Stand-ins for the samples' public images, which nothing here may fetch. The second is
# 17:8, the aspect that the 2K answer S2:116 (2985*1405) implies for the last image.
SAMPLE_IMAGES = {CAR: (1200, 800), PAINT: (1700, 800)}
SAMPLES = {
    "S0:306 qwen-image-2.0-pro": (QWEN_2_PRO_SYNC, E1),
    "S0:565 wan2.6-t2i": (WAN26_T2I_ASYNC, E2),
    "S2:258 wan2.7-image-pro": (WAN27_PRO_SYNC, E1),
    "S2:541 wan2.7-image-pro": (WAN27_PRO_ASYNC, E2),
}
READINGS = {"default": frozenset[Reading](), "strict": STRICT}


def sample_image(url: str) -> bytes:
    width, height = SAMPLE_IMAGES[url]  # any other URL: a failed download
    return make_image(width, height, fmt="WEBP")


def _config(readings: frozenset[Reading] = frozenset()) -> EmulatorConfig:
    return EmulatorConfig(
        pending_seconds=1.0,
        running_seconds=3.0,
        submits_per_second=1000,
        queries_per_second=1000,
        max_running_per_model=100,
        seed_reading=readings,
    )


@pytest.fixture
def world() -> Iterator[Callable[..., Emulated]]:
    """Makes in-process emulators under given readings, fetching the samples' images."""
    made: list[Emulated] = []

    def make(*readings: Reading) -> Emulated:
        emulated = Emulated(_config(frozenset(readings)))
        emulated.emulator = Emulator(
            emulated.emulator.config, clock=emulated.clock, fetch_url=sample_image
        )
        emulated.transport.emulator = emulated.emulator
        made.append(emulated)
        return emulated

    yield make
    for emulated in made:
        emulated.client.close()
        emulated.http.close()


def _finish(emulated: Emulated, answer) -> dict:
    """The sync answer, or the async task's final state."""
    assert answer.status_code == 200, answer.text
    body = answer.json()
    if body["output"].get("task_status") != "PENDING":
        return body
    emulated.clock.advance(30)
    return emulated.get(f"/tasks/{body['output']['task_id']}").json()


@pytest.mark.parametrize("reading", READINGS, ids=str)
@pytest.mark.parametrize("sample", SAMPLES, ids=str)
def test_the_documents_sample_requests_are_accepted_as_written(world, sample, reading):
    text, endpoint = SAMPLES[sample]
    emulated = world(*READINGS[reading])
    body = _finish(emulated, emulated.post(endpoint, text.encode()))
    assert body["output"].get("task_status", "SUCCEEDED") == "SUCCEEDED", body
    assert body["usage"]["image_count"] == 1


def test_the_qwen_sample_prompt_is_long_in_characters_and_short_in_tokens(world):
    """S0:314's prompt is 2,045 characters and 439 tokens: the seed's own working request
    rules out a 1,300-character reading of the qwen-image-2.0 limit."""
    prompt = json.loads(QWEN_2_PRO_SYNC)["input"]["messages"][0]["content"][0]["text"]
    assert len(prompt) == 2045
    assert emulator_rules.text_length(prompt, emulator_rules.Unit.TOKENS) == 439
    emulated = world()
    answer = emulated.post(E1, QWEN_2_PRO_SYNC.encode()).json()
    assert answer["usage"] == {"height": 2048, "image_count": 1, "width": 2048}


def test_the_wan27_sample_makes_2k_in_the_last_images_aspect(world):
    emulated = world()
    answer = emulated.post(E1, WAN27_PRO_SYNC.encode()).json()
    assert answer["usage"]["size"] == "2985*1405"  # as S2:116 reports for these inputs
    [choice] = answer["output"]["choices"]
    assert [item["type"] for item in choice["message"]["content"]] == ["image"]


@pytest.mark.skipif(not SEEDS.is_dir(), reason="the seed documents are not beside the repo")
@pytest.mark.parametrize("sample", SAMPLES, ids=str)
def test_the_sample_bodies_are_the_seeds_own(sample):
    tag, _, model = sample.partition(" ")
    seed, _, line = tag.partition(":")
    path = next(SEEDS.glob(f"00{seed[1]}_*.txt"))
    lines = path.read_text(encoding="utf-8").splitlines()
    start = int(line) - 1
    assert lines[start].startswith("--data '"), lines[start]
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("}'"))
    written = "\n".join([lines[start].removeprefix("--data '"), *lines[start + 1 : end], "}"])
    assert written == SAMPLES[sample][0]
    assert json.loads(written)["model"] == model


# -- prompt lengths in the limit's own unit -----------------------------------------------


def qwen_prompt(tokens: int) -> str:
    prompt = " x" * tokens
    assert emulator_rules.text_length(prompt, emulator_rules.Unit.TOKENS) == tokens
    return prompt


def messages_body(model: str, prompt: str = "a lighthouse", **parameters: object) -> dict:
    return {
        "model": model,
        "input": {"messages": [{"role": "user", "content": [{"text": prompt}]}]},
        "parameters": parameters,
    }


def prompt_body(model: str, prompt: str = "a lighthouse", **parameters: object) -> dict:
    return {"model": model, "input": {"prompt": prompt}, "parameters": parameters}


@pytest.mark.parametrize(
    ("model", "limit"), [("qwen-image-2.0-pro", 1300), ("qwen-image-max", 800)]
)
def test_a_qwen_prompt_one_token_over_is_refused_with_its_count(world, model, limit):
    emulated = world()
    accepted = emulated.post(E1, messages_body(model, qwen_prompt(limit)))
    assert accepted.status_code == 200, accepted.text
    refused = emulated.post(E1, messages_body(model, qwen_prompt(limit + 1)))
    assert refused.status_code == 400 and refused.json()["code"] == "InvalidParameter"
    assert refused.json()["message"] == (
        f"The prompt is {limit + 1:,} tokens; {model} takes at most {limit:,} tokens."
    )


def test_a_wan_prompt_is_counted_in_characters(world):
    emulated = world()
    refused = emulated.post(E2, messages_body("wan2.7-image", "字" * 5001))
    assert refused.status_code == 400
    assert refused.json()["message"] == (
        "The prompt is 5,001 characters; wan2.7-image takes at most 5,000 characters."
    )
    assert emulated.post(E2, messages_body("wan2.7-image", "字" * 5000)).status_code == 200


# -- the readings of the documents' contradictions -----------------------------------------


@pytest.mark.parametrize(
    ("model", "endpoint", "body"),
    [("wan2.6-t2i", E2, messages_body), ("wan2.5-t2i-preview", E3, prompt_body)],
)
@pytest.mark.parametrize(
    ("size", "strict_words"),
    [
        ("1024*1024", "pixels"),  # S0:650's default, below S0:107's 1280*1280
        ("1440*810", "pixels"),  # S0:652
        ("2880*720", "at most 1440"),  # 1440² in total at 4:1, but a side over S0:648's 1440
        ("1280*1280", None),  # every reading's
    ],
)
def test_wan_t2i_sizes_by_reading(world, model, endpoint, body, size, strict_words):
    lenient = world().post(endpoint, body(model, size=size))
    assert lenient.status_code == 200, lenient.text
    strict = world(Reading.WAN_T2I_SIZE_STRICT).post(endpoint, body(model, size=size))
    if strict_words is None:
        assert strict.status_code == 200, strict.text
        return
    assert strict.status_code == 400 and strict.json()["code"] == "InvalidParameter"
    assert strict_words in strict.json()["message"]


@pytest.mark.parametrize("size", ["700*700", "1440*1441", "2000*400"])
def test_wan_t2i_sizes_no_reading_accepts(world, size):
    for readings in ((), (Reading.WAN_T2I_SIZE_STRICT,)):
        refused = world(*readings).post(E2, messages_body("wan2.6-t2i", size=size))
        assert refused.status_code == 400, (readings, refused.text)


def _with_image(body: dict, data: bytes) -> dict:
    uri = "data:image/bmp;base64," + base64.b64encode(data).decode()
    body["input"]["messages"][0]["content"].append({"image": uri})
    return body


@pytest.mark.parametrize(
    ("model", "side", "megabytes"), [("wan2.7-image", 2595, 20), ("wan2.6-image", 1826, 10)]
)
def test_an_input_file_just_over_its_limit_by_reading(world, model, side, megabytes):
    data = make_image(side, side, fmt="BMP")
    assert megabytes * 1000 * 1000 < len(data) < megabytes * 1024 * 1024
    lenient = world().post(E2, _with_image(messages_body(model, n=1), data))
    assert lenient.status_code == 200, lenient.text
    strict = world(Reading.FILE_SIZE_STRICT).post(E2, _with_image(messages_body(model, n=1), data))
    assert strict.status_code == 400
    limit = f"takes files up to {megabytes} MB ({megabytes * 1000 * 1000:,} bytes)"
    assert limit in strict.json()["message"]


def test_qwen_plus_n_on_the_async_path_by_reading(world):
    refused = world().post(E3, prompt_body("qwen-image-plus", n=2))
    assert refused.status_code == 400 and "exactly 1 image" in refused.json()["message"]
    wide = world(Reading.QWEN_ASYNC_N_UP_TO_4)
    task = _finish(wide, wide.post(E3, prompt_body("qwen-image-plus", n=2)))
    assert task["output"]["task_status"] == "SUCCEEDED"
    assert len(task["output"]["results"]) == 2
    assert wide.post(E3, prompt_body("qwen-image-plus", n=5)).status_code == 400
    # The sync path makes one image in every reading.
    assert wide.post(E1, messages_body("qwen-image-plus", n=2)).status_code == 400


@pytest.mark.parametrize(
    ("model", "parameter", "value"),
    [
        ("wan2.7-image", "negative_prompt", "blurry"),  # S2:780
        ("wan2.7-image", "prompt_extend", True),  # S2:799
        ("wan2.6-t2i", "bbox_list", [[]]),  # S2:820: wan2.7 only
        ("qwen-image-2.0", "thinking_mode", True),
    ],
)
def test_a_parameter_a_model_does_not_support_by_reading(world, model, parameter, value):
    body = messages_body(model, n=1, **{parameter: value})
    assert world().post(E2 if "wan" in model else E1, body).status_code == 200
    refused = world(Reading.UNSUPPORTED_REFUSED).post(E2 if "wan" in model else E1, body)
    assert refused.status_code == 400
    assert refused.json()["message"] == f"{model} does not support {parameter}."


def test_the_prompt_in_input_on_the_messages_endpoint_by_reading(world):
    body = {"model": "qwen-image-2.0", "input": {"prompt": "a sign", "negative_prompt": "blur"}}
    refused = world().post(E1, body)
    assert refused.status_code == 400 and refused.json()["code"] == "BadRequest.EmptyInput"
    assert world(Reading.PROMPT_IN_INPUT).post(E1, body).status_code == 200


def test_the_qwen_fixed_size_default_by_reading(world):
    body = messages_body("qwen-image-max")
    assert world().post(E1, body).json()["usage"]["width"] == 1664
    square = world(Reading.QWEN_DEFAULT_SQUARE).post(E1, body).json()["usage"]
    assert (square["width"], square["height"]) == (1328, 1328)


def test_the_wan27_2k_output_by_reading(world):
    body = messages_body("wan2.7-image", size="2K")
    assert world().post(E1, body).json()["usage"]["size"] == "2048*2048"
    small = world(Reading.WAN27_2K_AS_1K).post(E1, body).json()["usage"]
    assert small["size"] == "1024*1024"  # as S2:301's 1488*704 is about 1024² pixels


def test_readings_are_chosen_by_name_preset_variable_or_control():
    assert parse_readings("strict") == STRICT
    assert parse_readings(["lenient"]) == frozenset()
    assert parse_readings("strict, wan27-2k-as-1k") == STRICT | {Reading.WAN27_2K_AS_1K}
    with pytest.raises(ValueError, match="wan-t2i-size-strict"):
        parse_readings("strictest")
    config = EmulatorConfig.from_env({"DASHSCOPE_EMULATOR_SEED_READING": "strict"})
    assert config.seed_reading == STRICT
    emulator = Emulator(EmulatorConfig(), clock=FakeClock())
    http = httpx.Client(base_url="http://emulator.test", transport=EmulatorTransport(emulator))
    answer = http.post("/_emulator/seed-reading", json={"seed_reading": "wan-t2i-size-strict"})
    assert answer.json() == {"seed_reading": ["wan-t2i-size-strict"]}
    assert emulator.stats()["seed_reading"] == ["wan-t2i-size-strict"]


def test_the_served_emulator_takes_the_reading_and_result_host_flags(tmp_path):
    served = start_served_emulator(
        tmp_path / "log.jsonl",
        "--seed-reading",
        "strict",
        "--result-hosts",
        "dashscope-result-bj.oss-cn-beijing.aliyuncs.com",
        "--running-seconds",
        "0",
    )
    try:
        headers = {"Authorization": f"Bearer {API_KEY}"}
        assert served.control("stats")["seed_reading"] == sorted(STRICT)
        url = served.base_url + E1.value
        refused = httpx.post(
            url, json=messages_body("wan2.6-t2i", size="1024*1024"), headers=headers
        )
        assert refused.status_code == 400 and "pixels" in refused.json()["message"]
        made = httpx.post(
            url, json=messages_body("qwen-image-2.0", size="512*512"), headers=headers
        )
        image = made.json()["output"]["choices"][0]["message"]["content"][0]["image"]
        assert image.startswith("https://dashscope-result-bj.oss-cn-beijing.aliyuncs.com/results/")
    finally:
        stop(served)
