"""Serve the offline DashScope emulator over HTTP."""

from __future__ import annotations

import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from studio.dashscope.emulator import Emulator, EmulatorConfig, serve
from studio.dashscope.emulator.config import parse_faults, parse_result_hosts
from studio.dashscope.emulator.rules import parse_readings


class Command(BaseCommand):
    help = (
        "Serve the DashScope emulator: the provider's wire protocol, limits and task states, "
        "offline. Flags override DASHSCOPE_EMULATOR_* environment variables."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--addr", default="127.0.0.1:8765", help="host:port to listen on")
        parser.add_argument("--log", dest="log_path", help="append a JSON line per request here")
        parser.add_argument("--pending-seconds", type=float, help="least time in PENDING")
        parser.add_argument("--running-seconds", type=float, help="time in RUNNING")
        parser.add_argument(
            "--max-running",
            dest="max_running_per_model",
            type=int,
            help="tasks RUNNING at once per model; the rest wait PENDING",
        )
        parser.add_argument("--submits-per-second", type=int, help="per model")
        parser.add_argument(
            "--queries-per-second", type=int, help="task fetch, list and cancel, per account"
        )
        parser.add_argument(
            "--task-ttl",
            dest="task_ttl_seconds",
            type=float,
            help="seconds until a task id reads UNKNOWN",
        )
        parser.add_argument(
            "--result-ttl",
            dest="result_ttl_seconds",
            type=float,
            help="seconds until a result URL expires",
        )
        parser.add_argument("--retry-after", type=int, help="Retry-After seconds on 429s")
        parser.add_argument(
            "--public-url", help="origin written into upload certificates (the upload host)"
        )
        parser.add_argument(
            "--result-hosts",
            help="comma-separated hosts result URLs name in turn; {hex} is four hex digits",
        )
        parser.add_argument(
            "--seed-reading",
            action="append",
            default=[],
            help=(
                "play other readings of the documents' contradictions: strict, or names such "
                "as wan-t2i-size-strict (repeatable; docs/provider.md lists them)"
            ),
        )
        parser.add_argument(
            "--utc-offset-minutes",
            type=int,
            help="zone of the times the provider writes, minutes east of UTC (480: Beijing)",
        )
        parser.add_argument(
            "--fault",
            action="append",
            default=[],
            help="inject a fault, e.g. submit:429x3 or fetch:drop (repeatable)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        host, _, port = options["addr"].rpartition(":")
        if not host or not port.isdigit():
            raise CommandError("--addr must be host:port, for example 127.0.0.1:8765")
        try:
            faults = [rule for spec in options["fault"] for rule in parse_faults(spec)]
            hosts = options["result_hosts"]
            result_hosts = parse_result_hosts(hosts) if hosts is not None else None
            readings = parse_readings(options["seed_reading"]) if options["seed_reading"] else None
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        overrides = {
            name: options[name]
            for name in (
                "log_path",
                "pending_seconds",
                "running_seconds",
                "max_running_per_model",
                "submits_per_second",
                "queries_per_second",
                "task_ttl_seconds",
                "result_ttl_seconds",
                "retry_after",
                "utc_offset_minutes",
                "public_url",
            )
        }
        overrides |= {"result_hosts": result_hosts, "seed_reading": readings}
        try:
            config = EmulatorConfig.from_env(**overrides)
        except ValueError as exc:
            raise CommandError(f"Bad DASHSCOPE_EMULATOR_* setting: {exc}") from None
        if faults:
            config.faults = faults
        try:
            server = serve(Emulator(config, prerender=True), host, int(port))
        except (OSError, OverflowError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else str(exc)
            raise CommandError(f"The emulator cannot listen on {host}:{port}: {reason}.") from None
        # SIGTERM ends the server as Ctrl-C does, so supervisors stop it cleanly.
        signal.signal(signal.SIGTERM, _interrupt)
        self.stdout.write(
            f"DashScope emulator on http://{host}:{port}/api/v1 "
            f"(keys starting {config.api_key_prefix!r}; {config.pending_seconds:g}s pending, "
            f"{config.running_seconds:g}s running, {config.max_running_per_model} running per "
            f"model, {config.submits_per_second} submits/s per model, "
            f"{config.queries_per_second} queries/s)"
        )
        if config.faults:
            self.stdout.write("Injected faults: " + ", ".join(str(f) for f in config.faults))
        if config.seed_reading:
            self.stdout.write("Seed readings: " + ", ".join(sorted(config.seed_reading)))
        self.stdout.flush()
        try:
            server.serve_forever(poll_interval=0.2)
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
