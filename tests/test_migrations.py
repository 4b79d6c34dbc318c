"""Models that moved to another app keep their tables, their rows and their content types:
the price table (generation → accounts), the activity feed (gallery → audit) and the
worker's heartbeat (core → generation)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.apps.registry import Apps
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from studio.accounts.models import ModelPrice
from studio.audit.models import Activity
from studio.generation.models import WorkerHeartbeat

# Every app as it was just before the moves.
BEFORE_THE_MOVES = [
    ("accounts", "0004_budgets"),
    ("generation", "0012_job_model_finished_index"),
    ("gallery", "0002_comments_boards"),
    ("audit", "0002_retry_download_action"),
    ("core", "0001_worker_heartbeat"),
]
# (old app label, new app label, model name) of each move.
MOVES = [
    ("generation", "accounts", "modelprice"),
    ("gallery", "audit", "activity"),
    ("core", "generation", "workerheartbeat"),
]


def migrate_to(targets: list[tuple[str, str]] | None = None) -> Apps:
    """Migrate the database to `targets` (the latest migrations when None); the models as
    they were there."""
    executor = MigrationExecutor(connection)
    targets = targets or executor.loader.graph.leaf_nodes()
    executor.migrate(targets)
    return MigrationExecutor(connection).loader.project_state(targets).apps


def add_old_rows(old: Apps) -> dict[str, object]:
    """A price, a heartbeat and an activity line (with its team, person, job and image),
    written through the models of the apps they belonged to."""
    now = timezone.now()
    user = old.get_model("auth", "User").objects.create(username="ada")
    team = old.get_model("accounts", "Team").objects.create(name="Posters", slug="posters")
    job = old.get_model("generation", "Job").objects.create(
        team=team,
        author=user,
        kind="text-to-image",
        model="wan2.6-t2i",
        prompt="A lamp",
        images_requested=1,
    )
    image = old.get_model("generation", "GeneratedImage").objects.create(
        job=job, team=team, index=0, width=8, height=8, bytes=10, sha256="0" * 64
    )
    price = old.get_model("generation", "ModelPrice").objects.create(
        model="wan2.6-t2i", price_per_image=Decimal("0.0350"), currency="EUR"
    )
    old.get_model("core", "WorkerHeartbeat").objects.create(
        name="host:1:cluster", host="host", pid=1, started_at=now, beat_at=now
    )
    old.get_model("gallery", "Activity").objects.create(
        team=team, actor=user, verb="generated", job=job, image=image, detail="1 image"
    )
    return {"user": user, "team": team, "job": job, "image": image, "price": price}


def content_type_ids(position: int) -> dict[str, int]:
    """The content type of each moved model, under its old (0) or new (1) app label."""
    return {
        model: ContentType.objects.get(app_label=labels[position], model=model).pk
        for *labels, model in MOVES
    }


@pytest.mark.django_db(transaction=True)
def test_moved_models_keep_their_rows_and_content_types():
    ids_at_the_latest = content_type_ids(1)
    try:
        old = migrate_to(BEFORE_THE_MOVES)
        assert content_type_ids(0) == ids_at_the_latest
        rows = add_old_rows(old)
    finally:
        migrate_to()
    assert content_type_ids(1) == ids_at_the_latest

    price = ModelPrice.objects.get()
    assert (price.pk, price.model, price.price_per_image, price.currency) == (
        rows["price"].pk,
        "wan2.6-t2i",
        Decimal("0.0350"),
        "EUR",
    )
    beat = WorkerHeartbeat.objects.get()
    assert (beat.name, beat.host, beat.pid) == ("host:1:cluster", "host", 1)
    line = Activity.objects.get()
    assert (line.team_id, line.actor_id, line.job_id, line.image_id) == (
        rows["team"].pk,
        rows["user"].pk,
        rows["job"].pk,
        rows["image"].pk,
    )
    assert (line.verb, line.detail) == (Activity.Verb.GENERATED, "1 image")


@pytest.mark.django_db(transaction=True)
def test_rolling_the_moves_back_one_app_at_a_time_keeps_who_may_change_prices():
    from django.contrib.auth.models import Group, Permission
    from django.core.management import call_command

    change = Permission.objects.get(
        content_type__app_label="accounts", codename="change_modelprice"
    )
    group = Group.objects.create(name="Pricing")
    group.permissions.add(change)
    try:
        # Each command ends with Django making the content types its state lacks: after the
        # first, one for generation's price model, granted to nobody.
        call_command("migrate", "generation", "0012_job_model_finished_index", verbosity=0)
        call_command("migrate", "accounts", "0004_budgets", verbosity=0)
        ContentType.objects.clear_cache()
        back = group.permissions.get(codename="change_modelprice")
        assert (back.pk, back.content_type.app_label) == (change.pk, "generation")
    finally:
        call_command("migrate", verbosity=0)
    ContentType.objects.clear_cache()
    again = group.permissions.get(codename="change_modelprice")
    assert (again.pk, again.content_type.app_label) == (change.pk, "accounts")
