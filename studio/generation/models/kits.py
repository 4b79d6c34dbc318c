"""A team's brand kits: the settings and reference images a job starts from in one click."""

from __future__ import annotations

import builtins
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from studio.accounts.models import Team

SUBJECT = "{subject}"  # where the designer's own words go in a kit's prompt


class BrandKit(models.Model):
    """What a job of the team's brand starts from. Applying a kit copies its values into
    the form, where each stays editable; a job keeps its own copy, so a later change to the
    kit (or its removal) leaves past jobs as they were."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="kits")
    name = models.CharField(max_length=80)
    prompt_template = models.TextField(
        blank=True, help_text=f"Write {SUBJECT} where the designer's own words go."
    )
    prompt_suffix = models.CharField(max_length=500, blank=True)
    negative_prompt = models.TextField(blank=True)
    model = models.CharField(max_length=64, blank=True)  # a catalog name; blank: any
    size = models.CharField(max_length=16, blank=True)  # "W*H" as the provider takes it
    # [{"hex": "#RRGGBB", "ratio": "40.00%"}, ...], as a job's parameters hold it.
    color_palette = models.JSONField(default=list, blank=True)
    watermark = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="unique_kit_name"),
        ]

    def __str__(self) -> str:
        return self.name

    def subject_of(self, prompt: str) -> str:
        """The designer's own words in a prompt this kit wrote (its suffix and the text
        around its slot taken off), or the prompt itself if the kit did not write it."""
        whole = prompt.strip()
        words, suffix = whole, self.prompt_suffix.strip()
        if suffix and words.endswith(suffix):
            words = words[: -len(suffix)].rstrip()
        before, _, after = (self.prompt_template or SUBJECT).partition(SUBJECT)
        before, after = before.strip(), after.strip()
        if before or after:
            wrapped = words.startswith(before) and words.endswith(after)
            if not wrapped or len(words) < len(before) + len(after):
                return whole  # rewritten by her: all of it is hers
            words = words[len(before) : len(words) - len(after)].strip()
        return "" if words == SUBJECT else words

    def prompt_for(self, subject: str) -> str:
        """The kit's prompt around the designer's words, then its suffix: applied again,
        the same prompt. Without words the slot stays, for her to fill in; the form
        refuses to send it unfilled."""
        words = self.subject_of(subject)
        suffix = self.prompt_suffix.strip()
        prompt = (self.prompt_template or SUBJECT).replace(SUBJECT, words or SUBJECT)
        if prompt == SUBJECT:
            prompt = ""  # no template, nothing written yet
        if suffix:
            joiner = "" if not prompt or suffix[0] in ",.;:" else " "
            prompt = f"{prompt.rstrip()}{joiner}{suffix}"
        return prompt


def _kit_image_path(instance: KitImage, filename: str) -> str:
    # Named by the kit and a name of its own, never by the upload: nothing to traverse, and
    # never the name of an image removed in the same save, whose file goes after it.
    return f"kits/{instance.kit_id}/{uuid.uuid4().hex}.{filename.rsplit('.', 1)[-1]}"


class KitImage(models.Model):
    """A reference image kept with a kit, normalised once when added, then copied onto any
    edit form the kit is applied to without being uploaded again."""

    kit = models.ForeignKey(BrandKit, on_delete=models.CASCADE, related_name="images")
    position = models.PositiveSmallIntegerField()
    image = models.FileField(upload_to=_kit_image_path, max_length=200)
    mime = models.CharField(max_length=32)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    bytes = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    adjustments = models.JSONField(default=list, blank=True)  # what normalisation changed
    name = models.CharField(max_length=120, blank=True)  # the upload's name, for display

    class Meta:
        ordering = ["position", "pk"]

    def __str__(self) -> str:
        return f"{self.name or 'Image'} of kit {self.kit_id}"

    def read(self) -> builtins.bytes:  # the class's `bytes` is its size field
        with self.image.open("rb") as file:
            return file.read()
