"""`manage.py media_check`: compare the media store with the database, and repair."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from studio.generation.media import MediaReport, check_media


class Command(BaseCommand):
    help = (
        "Reports images whose file or thumbnail is missing or changed, and files no row "
        "refers to; --repair rebuilds missing thumbnails and deletes old orphans. Exits 1 "
        "while problems remain."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--repair",
            action="store_true",
            help="Rebuild missing thumbnails and delete orphan files older than --older-than.",
        )
        parser.add_argument(
            "--older-than",
            type=float,
            default=24.0,
            metavar="HOURS",
            help="Only orphans at least this old count as problems and may be deleted "
            "(default 24).",
        )
        parser.add_argument("--json", action="store_true", help="Print the report as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        report = check_media(
            default_storage,
            now=timezone.now(),
            repair=options["repair"],
            older_than=timedelta(hours=options["older_than"]),
        )
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
        else:
            self.stdout.write(describe(report))
        if report.problems:
            raise CommandError(f"{len(report.problems)} problem(s) remain.", returncode=1)


def describe(report: MediaReport) -> str:
    rows = ", ".join(f"{what} {count}" for what, count in report.rows.items())
    lines = [f"Files under {', '.join(report.dirs)}: {report.files}. Rows: {rows}."]
    for finding in report.findings:
        line = f"{finding.problem} {finding.what}: {finding.name or '(no name)'}"
        if finding.row:
            line += f" ({finding.row})"
        if finding.detail:
            line += f", {finding.detail}"
        if finding.action:
            line += f" - {finding.action}"
        lines.append(line)
    if not report.problems:
        lines.append("No problems.")  # otherwise the error line says how many remain
    return "\n".join(lines)
