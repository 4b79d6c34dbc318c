"""Check, with a real key, that DashScope still answers as the client and emulator assume."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from studio.dashscope.guard import emulator_route
from studio.dashscope.smoke import MAX_BILLED_IMAGES, Check, Recorder, SmokeTest, billed_calls


class Command(BaseCommand):
    help = (
        "Make one small call per endpoint family to the real DashScope service and report, "
        "per call, whether its answer has the shape the client and the emulator assume. "
        f"Generates up to {MAX_BILLED_IMAGES} images, which the provider bills."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--yes", action="store_true", help="do not ask before spending")
        parser.add_argument("--poll-interval", type=float, default=3.0)
        parser.add_argument(
            "--timeout", type=float, default=180.0, help="seconds to wait for each task"
        )
        parser.add_argument(
            "--record",
            metavar="DIR",
            type=Path,
            help=(
                "save each answer of the real service in DIR as a fixture file for "
                "tests/dashscope/test_provider_fixtures.py, with the API key and the result URLs' "
                "signatures replaced by REDACTED (e.g. DIR = tests/fixtures/provider)"
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        api_key = settings.DASHSCOPE_API_KEY
        if not api_key:
            raise CommandError(
                "DASHSCOPE_API_KEY is not set. This command checks the real service, so it "
                "needs a real key; nothing was sent."
            )
        base_url = settings.DASHSCOPE_BASE_URL
        self.stdout.write(f"Target: {base_url}")
        self.stdout.write(f"This generates up to {MAX_BILLED_IMAGES} images, billed per image:")
        for name, request, _ in billed_calls():
            self.stdout.write(f"  - {name}: {request.model}, {request.size}, 1 image")
        self.stdout.write("  - cancel probe: wan2.6-t2i, 1 image if it starts before the cancel")
        self.stdout.write("Errors, the task list and an unknown task id cost nothing.")
        if not options["yes"] and not self._confirmed():
            raise CommandError("Not confirmed; nothing was sent. Pass --yes to skip the question.")
        recorder = self._recorder(options["record"], api_key, base_url)
        smoke = SmokeTest(
            api_key=api_key,
            base_url=base_url,
            poll_interval=options["poll_interval"],
            timeout=options["timeout"],
            recorder=recorder,
            result_hosts=settings.STUDIO_RESULT_HOSTS,
            route=emulator_route(base_url) if settings.DASHSCOPE_EMULATED else None,
        )
        failures = 0
        try:
            for check in smoke.run():  # printed as each call answers: real calls are slow
                failures += not check.ok
                self._report(check)
        finally:
            smoke.close()
            if recorder:  # what was saved is worth keeping even when a check failed
                count = len(recorder.written)
                self.stdout.write(f"Recorded {count} answers in {recorder.directory}")
        if failures:
            raise CommandError(
                f"{failures} checks differ: the emulator or the client is out of "
                "date with the real service."
            )
        self.stdout.write(self.style.SUCCESS("The real service answers as assumed."))

    def _recorder(self, directory: Path | None, api_key: str, base_url: str) -> Recorder | None:
        if directory is None:
            return None
        # Made before anything is sent, so a bad path costs no billed call.
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CommandError(f"Cannot record in {directory}: {exc}; nothing was sent.") from exc
        return Recorder(directory, base_url=base_url, secrets=(api_key,))

    def _report(self, check: Check) -> None:
        verdict = self.style.SUCCESS("OK  ") if check.ok else self.style.ERROR("DIFF")
        self.stdout.write(f"{verdict} {check.name} (HTTP {check.status})")
        for path in check.missing_in_real:
            self.stdout.write(f"       the emulator sends {path}; the real service does not")
        for problem in check.problems:
            self.stdout.write(f"       {problem}")
        for path in check.only_in_real:
            self.stdout.write(f"       only the real service sends {path}")
        for note in check.notes:
            self.stdout.write(f"       note: {note}")

    def _confirmed(self) -> bool:
        if not sys.stdin.isatty():
            return False
        return input("Type yes to continue: ").strip().lower() == "yes"
