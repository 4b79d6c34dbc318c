"""The Dockerfile, compose.yaml and the README's `.env`, checked and run as the image runs them.

No Docker engine runs here, so the image is never built. Instead these tests read the commands
out of the Dockerfile and compose.yaml and run those exact commands, with the image's
environment, in a copy of the tree the Dockerfile copies: editing either file changes what
is run here. Only addresses change (the bind port, the image's paths, the database).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from studio.dashscope.client import DashScopeClient
from studio.dashscope.emulator import Emulator, EmulatorConfig, EmulatorTransport
from studio.dashscope.types import GenerationRequest, TaskStatus
from tests.support.clusters import WORKER_COMMAND
from tests.support.compose import read_compose
from tests.support.emulation import EMULATOR_COMMAND, free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent

# -- Reading the files ----------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def read_dockerfile(path: Path = ROOT / "Dockerfile") -> list[list[Instruction]]:
    """The Dockerfile's instructions, one list per stage, continuation lines joined."""
    stages: list[list[Instruction]] = []
    logical = ""
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue  # Docker drops comment lines, even inside a continued instruction
        logical += line.rstrip()
        if logical.endswith("\\"):
            logical = logical[:-1]
            continue
        keyword, _, arguments = logical.strip().partition(" ")
        logical = ""
        if keyword.upper() == "FROM":
            stages.append([])
        stages[-1].append(Instruction(keyword.upper(), arguments.strip()))
    return stages


def runtime_stage() -> list[Instruction]:
    return read_dockerfile()[-1]


def arguments_of(stage: list[Instruction], keyword: str) -> list[str]:
    return [i.arguments for i in stage if i.keyword == keyword]


def image_paths(stage: list[Instruction]) -> dict[str, Path]:
    """Where the image's directories are here: the app tree is a copy, the venv is ours."""
    (copied_venv,) = [a.split()[-1] for a in arguments_of(stage, "COPY") if "--from=" in a]
    return {copied_venv: Path(sys.prefix)}


def localise(value: str, paths: dict[str, Path]) -> str:
    parts = value.split(":")
    for index, part in enumerate(parts):
        for image_path, here in paths.items():
            if part == image_path or part.startswith(image_path + "/"):
                parts[index] = str(here) + part[len(image_path) :]
    return ":".join(parts)


def image_environment(stage: list[Instruction], tree: Path) -> dict[str, str]:
    """This machine's basics (PATH, HOME, locale), then the image's ENV, paths localised."""
    ours = ("DJANGO_", "DASHSCOPE_", "DATABASE_URL", "STUDIO_", "STATIC_", "HADOLINT_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    paths = {**image_paths(stage), workdir(stage): tree}
    for arguments in arguments_of(stage, "ENV"):
        for pair in shlex.split(arguments):
            name, _, value = pair.partition("=")
            value = re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), ""), value)
            env[name] = localise(value, paths)
    return env


def workdir(stage: list[Instruction]) -> str:
    return arguments_of(stage, "WORKDIR")[-1]


def build_command(stage: list[Instruction]) -> str:
    (command,) = [a for a in arguments_of(stage, "RUN") if "collectstatic" in a]
    return command


def image_command(stage: list[Instruction]) -> list[str]:
    (command,) = arguments_of(stage, "CMD")
    return json.loads(command)


def readme_dotenv() -> dict[str, str]:
    """The `.env` the README tells a newcomer to create."""
    readme = (ROOT / "README.md").read_text()
    (block,) = re.findall(r"```dotenv\n(.*?)```", readme, flags=re.DOTALL)
    pairs = [line.split("=", 1) for line in block.splitlines() if re.match(r"[A-Z_]+=", line)]
    return dict(pairs)


def with_port(argv: list[str], old: str, new: str) -> list[str]:
    changed = [arg.replace(old, new) for arg in argv]
    assert changed != argv, f"{old} is not in {argv}"
    return changed


# -- Running the image's commands here --------------------------------------------------------


@dataclass
class ImageTree:
    root: Path
    env: dict[str, str]  # the image's environment plus the README's .env

    def run(self, argv: list[str], **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv,
            cwd=self.root,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=120,
        )


def copy_app_tree(stage: list[Instruction], tree: Path) -> None:
    """What the runtime stage's COPY instructions put in the image (not the copied venv)."""
    for arguments in arguments_of(stage, "COPY"):
        if "--from=" in arguments:
            continue
        source, destination = arguments.split()
        target = tree / destination
        if (ROOT / source).is_dir():
            shutil.copytree(ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / source, target / source if destination.endswith("/") else target)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> ImageTree:
    """The app tree as the image holds it, `collectstatic` run there by the build's command."""
    stage = runtime_stage()
    tree = tmp_path_factory.mktemp("image") / "app"
    tree.mkdir()
    copy_app_tree(stage, tree)
    env = image_environment(stage, tree)
    built = subprocess.run(
        ["/bin/sh", "-c", build_command(stage)],  # how Docker runs a shell-form RUN
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    database = tree.parent / "db.sqlite3"
    return ImageTree(tree, {**env, **readme_dotenv(), "DATABASE_URL": f"sqlite:///{database}"})


@pytest.fixture(scope="module")
def migrated(image: ImageTree) -> ImageTree:
    """The database prepared by compose's `migrate` service."""
    migrate = read_compose()["services"]["migrate"]["command"]
    result = image.run(migrate)
    assert result.returncode == 0, result.stdout + result.stderr
    return image


@dataclass
class Served:
    address: str  # host:port
    log: Path  # what gunicorn wrote to stdout and stderr


@contextmanager
def serve(image: ImageTree, log: Path, **env: str) -> Iterator[Served]:
    """The image's CMD, bound to a free local port instead of 0.0.0.0:8000."""
    address = f"127.0.0.1:{free_port()}"
    command = with_port(image_command(runtime_stage()), "0.0.0.0:8000", address)
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=image.root, env={**image.env, **env}, stdout=output, stderr=output
        )
    try:
        deadline = time.monotonic() + 60
        while not answers(address):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "gunicorn did not listen within 60 s"
            time.sleep(0.2)
        yield Served(address, log)
    finally:
        process.send_signal(signal.SIGTERM)  # gunicorn's graceful stop, as `docker stop` sends
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def answers(address: str) -> bool:
    host, _, port = address.partition(":")
    try:
        socket.create_connection((host, int(port)), timeout=0.5).close()
    except OSError:
        return False
    return True


@pytest.fixture(scope="module")
def web(migrated: ImageTree, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(migrated, tmp_path_factory.mktemp("web") / "gunicorn.log") as served:
        yield served


def web_healthcheck(address: str) -> list[str]:
    """compose's health check for `web`, pointed at `address` instead of 127.0.0.1:8000."""
    test = read_compose()["services"]["web"]["healthcheck"]["test"]
    assert test[0] == "CMD"
    return with_port(test[1:], "127.0.0.1:8000", address)


# -- The Dockerfile ----------------------------------------------------------------------------


def test_hadolint_finds_nothing_in_the_dockerfile(tmp_path):
    # A config of our own, so that no user-wide hadolint config can ignore rules here;
    # justified ignores belong in the Dockerfile, as `# hadolint ignore=...` comments.
    config = tmp_path / "hadolint.yaml"
    config.write_text("{}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HADOLINT_")}
    result = subprocess.run(
        [VENV_BIN / "hadolint", "--config", config, "--format", "json", ROOT / "Dockerfile"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )

    assert json.loads(result.stdout) == []
    assert result.returncode == 0, result.stderr


def test_the_image_runs_as_a_fixed_unprivileged_uid():
    (user,) = arguments_of(runtime_stage(), "USER")

    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000


def test_the_build_collects_hashed_compressed_static_files(image):
    manifest = json.loads((image.root / "staticfiles" / "staticfiles.json").read_text())

    hashed = manifest["paths"]["css/app.css"]
    assert re.fullmatch(r"css/app\.[0-9a-f]{12}\.css", hashed)
    assert (image.root / "staticfiles" / (hashed + ".gz")).is_file()


def test_the_build_context_leaves_out_secrets_and_local_data():
    """.dockerignore, applied as Docker does, to what a developer's tree holds."""
    local_only = [
        ".env",
        ".git/HEAD",
        ".venv/bin/python",
        "media/inputs/photo.png",
        "staticfiles/staticfiles.json",
        "db.sqlite3",
        ".test-db.sqlite3-wal",
        ".test-logs/pytest.log",
        ".test-artifacts/screenshots/gallery.png",
        "studio/__pycache__/settings.cpython-311.pyc",
        "studio.egg-info/PKG-INFO",
    ]
    copied = [
        arguments.split()[0]
        for stage in read_dockerfile()
        for arguments in arguments_of(stage, "COPY")
        if "--from=" not in arguments
    ]
    needed = [*copied, "studio/settings.py", "static/css/app.css", "templates/base.html"]

    assert [path for path in local_only if not dockerignored(path)] == []
    assert [path for path in needed if dockerignored(path)] == []


def dockerignored(path: str) -> bool:
    """Docker's rule: a pattern, anchored at the context root, matches the path or a parent."""
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert not any(p.startswith("!") for p in patterns), "exceptions are not handled here"
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    return any(re.fullmatch(glob_to_regex(p), prefix) for p in patterns for prefix in prefixes)


def glob_to_regex(pattern: str) -> str:
    tokens = re.split(r"(\*\*/|\*\*|\*|\?)", pattern.strip("/"))
    glob = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
    return "".join(glob.get(token, re.escape(token)) for token in tokens)


# -- compose.yaml ------------------------------------------------------------------------------


def test_compose_runs_the_studio_services_from_the_one_image():
    services = read_compose()["services"]

    assert set(services) == {"db", "migrate", "web", "worker", "emulator"}
    for name in ("migrate", "web", "worker", "emulator"):
        assert services[name]["build"] == "."
        assert services[name]["image"] == services["web"]["image"]
        assert services[name]["env_file"] == ".env"
    assert "command" not in services["web"]  # the image's CMD, run by the tests below
    assert services["emulator"]["profiles"] == ["demo"]


def test_compose_starts_web_and_worker_after_migrations_on_a_healthy_database():
    services = read_compose()["services"]

    assert services["db"]["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert services["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert services["migrate"]["restart"] == "no"  # a one-shot job, not restarted forever
    for name in ("web", "worker"):
        assert services[name]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"}
        }


def test_compose_keeps_data_in_named_volumes_at_the_image_paths():
    compose = read_compose()
    services = compose["services"]
    media_root = image_environment(runtime_stage(), Path("/app"))["STUDIO_MEDIA_ROOT"]

    assert {"media", "pgdata"} <= set(compose["volumes"])
    assert services["db"]["volumes"] == ["pgdata:/var/lib/postgresql/data"]
    for name in ("web", "worker"):
        assert f"media:{media_root}" in services[name]["volumes"]


def test_compose_publishes_the_port_the_image_serves_on():
    stage = runtime_stage()
    (exposed,) = arguments_of(stage, "EXPOSE")
    command = image_command(stage)
    bind = command[command.index("--bind") + 1]

    # Published on the loopback unless told otherwise: the proxy in front is the only client.
    published = read_compose()["services"]["web"]["ports"]
    assert published == [f"${{STUDIO_WEB_ADDRESS:-127.0.0.1}}:{exposed}:{exposed}"]
    assert bind == f"0.0.0.0:{exposed}"


def test_compose_worker_and_emulator_commands_are_those_the_other_tests_run():
    services = read_compose()["services"]

    assert services["worker"]["command"] == ["python", *WORKER_COMMAND]
    assert services["emulator"]["command"] == [
        "python",
        *EMULATOR_COMMAND,
        "--addr",
        "0.0.0.0:8765",
    ]


def compose_command() -> list[str] | None:
    """Docker Compose as installed: the v2 plugin, or the standalone v1 command."""
    if (
        shutil.which("docker")
        and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0
    ):
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_compose_itself_accepts_the_file_with_the_readmes_env(tmp_path):
    """Compose reads the file as a newcomer would have it: beside the README's `.env`. No
    engine is needed to check it; .ci/run installs the standalone command."""
    compose = compose_command()
    if compose is None:
        pytest.skip("Docker Compose is not installed")
    shutil.copy(ROOT / "compose.yaml", tmp_path / "compose.yaml")
    readme = (ROOT / "README.md").read_text()
    (block,) = re.findall(r"```dotenv\n(.*?)```", readme, flags=re.DOTALL)
    (tmp_path / ".env").write_text(block)
    checked = subprocess.run(
        [*compose, "--file", "compose.yaml", "config", "--services"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")},
    )
    assert checked.returncode == 0, checked.stderr
    assert set(checked.stdout.split()) == {"db", "migrate", "web", "worker", "emulator"}


def test_readme_database_url_reaches_the_compose_database():
    dotenv = readme_dotenv()
    db = read_compose()["services"]["db"]
    url = urlsplit(dotenv["DATABASE_URL"])

    assert (url.hostname, url.port) == ("db", 5432)
    assert url.username == db["environment"]["POSTGRES_USER"]
    assert url.password == dotenv["POSTGRES_PASSWORD"]
    assert "${POSTGRES_PASSWORD" in db["environment"]["POSTGRES_PASSWORD"]
    assert url.path == "/" + db["environment"]["POSTGRES_DB"]


def test_the_demo_worker_accepts_the_emulators_results():
    """The demo's worker routes result hosts to the emulator (DASHSCOPE_EMULATED), and
    the emulator's result URLs pass the studio's host rule."""
    dotenv = readme_dotenv()
    compose = read_compose()["services"]["emulator"]
    addr = compose["command"][compose["command"].index("--addr") + 1]
    base_url = urlsplit(dotenv["DASHSCOPE_BASE_URL"])
    assert dotenv["COMPOSE_PROFILES"] == "demo"
    assert (base_url.hostname, base_url.port) == ("emulator", int(addr.rpartition(":")[2]))
    assert dotenv["DASHSCOPE_EMULATED"] == "true"
    config = EmulatorConfig.from_env(
        {**dotenv, **compose["environment"]}, pending_seconds=0, running_seconds=0
    )
    request = GenerationRequest(model="wan2.6-t2i", prompt="a quay", size="1280*1280", n=1)

    with DashScopeClient(
        api_key=dotenv["DASHSCOPE_API_KEY"],
        base_url=dotenv["DASHSCOPE_BASE_URL"],
        transport=EmulatorTransport(Emulator(config)),
    ) as client:
        result = client.generate(request)
        assert result.status is TaskStatus.SUCCEEDED
        (url,) = result.image_urls
        image = client.download(url)

    assert url.startswith("https://") and ".aliyuncs.com/" in url
    assert image.startswith(b"\x89PNG")


# -- The commands, run -------------------------------------------------------------------------


def test_the_migrate_service_creates_the_schema(migrated):
    database = migrated.env["DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(database) as connection:
        tables = {row[0] for row in connection.execute("select name from sqlite_master")}

    assert {"generation_job", "django_q_ormq", "auth_user"} <= tables


def test_the_web_healthcheck_passes_against_the_image_command(migrated, web):
    assert migrated.run(web_healthcheck(web.address)).returncode == 0
    # ... and fails where nothing answers.
    assert migrated.run(web_healthcheck(f"127.0.0.1:{free_port()}")).returncode != 0


def test_the_image_command_serves_hashed_static_files(web):
    login = httpx.get(f"http://{web.address}/accounts/login/")
    assert login.status_code == 200
    stylesheet = re.search(r'href="(/static/css/app\.[0-9a-f]{12}\.css)"', login.text)
    assert stylesheet, "the page links the hashed stylesheet"

    served = httpx.get(
        f"http://{web.address}{stylesheet.group(1)}", headers={"Accept-Encoding": "gzip"}
    )

    assert served.status_code == 200
    assert "immutable" in served.headers["Cache-Control"]
    assert served.headers["Content-Encoding"] == "gzip"


def test_the_image_command_logs_each_request(web):
    assert httpx.get(f"http://{web.address}/healthz?from=test").status_code == 200

    deadline = time.monotonic() + 10
    while '"GET /healthz?from=test HTTP/1.1" 200' not in web.log.read_text():
        assert time.monotonic() < deadline, web.log.read_text()
        time.sleep(0.1)


def test_behind_tls_the_healthcheck_passes_while_plain_http_is_redirected(migrated, tmp_path):
    with serve(migrated, tmp_path / "gunicorn.log", DJANGO_SECURE="true") as served:
        plain = httpx.get(f"http://{served.address}/healthz")
        checked = migrated.run(web_healthcheck(served.address))

    assert plain.status_code == 301
    assert plain.headers["Location"] == f"https://{served.address}/healthz"
    assert checked.returncode == 0, checked.stderr


def test_the_image_command_starts_web_concurrency_processes(migrated, web):
    expected = int(migrated.env["WEB_CONCURRENCY"])

    deadline = time.monotonic() + 30
    while web.log.read_text().count("Booting worker with pid") < expected:
        assert time.monotonic() < deadline, web.log.read_text()
        time.sleep(0.2)
    assert web.log.read_text().count("Booting worker with pid") == expected
