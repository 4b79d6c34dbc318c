"""The gallery's filters and the newest-first pages they select, and the reading of a
comment as it is posted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any, cast

from django import forms
from django.contrib.auth.models import User
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.forms.renderers import BaseRenderer
from django.forms.utils import flatatt
from django.http import QueryDict
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from studio.accounts.models import Membership
from studio.dashscope.catalog import MODELS
from studio.dashscope.types import Box
from studio.gallery.models import Board, Star
from studio.generation.kits import team_kits
from studio.generation.lineage import jobs_using
from studio.generation.models import GeneratedImage, Job
from studio.generation.parsers import parse_boxes

PAGE_SIZE = 48


@dataclass(frozen=True)
class Cursor:
    """Where a page ends: the last image's time and id. Reading on from a cursor costs the
    same on page 200 as on page 1, where an offset would count every image before it."""

    created_at: datetime
    id: int

    def __str__(self) -> str:
        return f"{self.created_at.timestamp():.6f}_{self.id}"

    @classmethod
    def parse(cls, value: str) -> Cursor | None:
        stamp, _, pk = value.partition("_")
        try:
            moment = datetime.fromtimestamp(float(stamp), tz=UTC)
            return cls(moment, int(pk))
        except (ValueError, OverflowError, OSError):
            return None


class QuickSelect(forms.Select):
    """A select written out in Python. Django's own includes a template for every option,
    and the gallery's filters, drawn on every page of it, took a fifth of its time so."""

    def render(
        self,
        name: str,
        value: object,
        attrs: dict[str, object] | None = None,
        renderer: BaseRenderer | None = None,
    ) -> SafeString:
        widget = self.get_context(name, value, attrs)["widget"]
        options = format_html_join(
            "",
            '<option value="{}"{}>{}</option>',
            (
                (
                    option["value"],
                    mark_safe(" selected") if option["selected"] else "",
                    option["label"],
                )
                for _group, choices, _index in widget["optgroups"]
                for option in choices
            ),
        )
        return format_html(
            '<select name="{}"{}>{}</select>', name, flatatt(widget["attrs"]), options
        )


class GalleryFilter(forms.Form):
    # Prompts, and the text of pieces of text and images.
    q = forms.CharField(
        required=False,
        label="Search",
        max_length=200,
        widget=forms.TextInput(attrs={"placeholder": "Words in a prompt or a piece's text"}),
    )
    author = forms.ModelChoiceField(
        queryset=User.objects.none(), required=False, label="By", widget=QuickSelect
    )
    model = forms.ChoiceField(required=False, widget=QuickSelect)
    kind = forms.ChoiceField(
        required=False,
        choices=[("", "Any kind"), *Job.Kind.choices],
        label="Kind",
        widget=QuickSelect,
    )
    state = forms.ChoiceField(
        required=False,
        choices=[("", "Any state"), *GeneratedImage.Review.choices],
        label="Review",
        widget=QuickSelect,
    )
    starred = forms.BooleanField(required=False, label="Starred by me")
    mentioned = forms.BooleanField(required=False, label="Mentioning me")
    board = forms.TypedChoiceField(
        coerce=int, empty_value=None, required=False, label="Board", widget=QuickSelect
    )
    kit = forms.TypedChoiceField(
        coerce=int, empty_value=None, required=False, label="Brand kit", widget=QuickSelect
    )
    since = forms.DateField(required=False, label="From", widget=forms.DateInput({"type": "date"}))
    until = forms.DateField(required=False, label="To", widget=forms.DateInput({"type": "date"}))
    # One job's images: a set opened from its stacked card. Not a filter people set by hand;
    # the grid says what it shows and how to go back.
    job = forms.UUIDField(required=False, widget=forms.HiddenInput)
    # The images made from one image ("Edits of this image" in the viewer).
    edits_of = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    # Filters a person chooses in the filter bar (the rest narrow the grid from links).
    HIDDEN = ("q", "job", "edits_of")

    def __init__(self, data: QueryDict, membership: Membership) -> None:
        super().__init__(data)
        self.membership = membership
        # The fields declared above, as their own classes (`fields` holds plain Fields).
        author_field = cast("forms.ModelChoiceField[User]", self.fields["author"])
        board_field = cast(forms.TypedChoiceField, self.fields["board"])
        model_field = cast(forms.ChoiceField, self.fields["model"])
        author_field.queryset = User.objects.filter(
            memberships__team_id=membership.team_id
        ).order_by("username")
        author_field.empty_label = "Anyone"
        # Called when the select is drawn or a board is chosen, and read once: the page's
        # selection bar lists the same boards.
        board_field.choices = lambda: [
            ("", "Any board"),
            *((board.pk, board.name) for board in self.boards),
        ]
        model_field.choices = [("", "Any model")] + [(m.name, m.label) for m in MODELS]
        # Read when drawn, or when a kit is asked for: a page without kits asks nothing.
        cast(forms.TypedChoiceField, self.fields["kit"]).choices = lambda: [
            ("", "Any kit"),
            *team_kits(membership.team_id).values_list("pk", "name"),
        ]

    @cached_property
    def boards(self) -> list[Board]:
        return list(Board.objects.filter(team_id=self.membership.team_id).with_counts())

    def images(self) -> QuerySet[GeneratedImage]:
        """The team's images that match, newest first (nothing else's, whatever is asked)."""
        rows: QuerySet[GeneratedImage] = GeneratedImage.objects.kept().filter(
            team_id=self.membership.team_id
        )
        # A value that is not valid (a deleted board in an old link, a mistyped date) is
        # left out on its own; the other filters still apply.
        self.is_valid()
        data = self.cleaned_data
        rows = self._dated(self._narrowed(rows, data), data)
        # One job's images (a set opened), or every set stacked into one card.
        rows = rows.filter(job_id=data["job"]) if data.get("job") else self._stacked(rows, data)
        starred = Star.objects.filter(image=OuterRef("pk"), user=self.membership.user)
        # An opened set reads in its own order (at most twelve: one page, no cursor).
        order = ("index", "id") if data.get("job") else ("-created_at", "-id")
        return (
            rows.select_related("job", "job__author")
            .annotate(starred=Exists(starred))
            .order_by(*order)
        )

    def _narrowed(
        self, rows: QuerySet[GeneratedImage], data: dict[str, Any]
    ) -> QuerySet[GeneratedImage]:
        """`rows` narrowed to the prompt's words, the job's author, model and kind, the review
        state, and the caller's stars, mentions and board."""
        if data.get("q"):
            # Every word must appear, in the prompt or in the text of the piece the image
            # illustrates; on a team's tens of thousands of prompts this scan stays within
            # a page's budget (make bench measures it).
            for word in data["q"].split()[:8]:
                rows = rows.filter(
                    Q(job__prompt__icontains=word) | Q(job__output_text__icontains=word)
                )
        if data.get("author"):
            rows = rows.filter(job__author=data["author"])
        if data.get("model"):
            rows = rows.filter(job__model=data["model"])
        if data.get("kind"):
            rows = rows.filter(job__kind=data["kind"])
        if data.get("state"):
            rows = rows.filter(review_state=data["state"])
        if data.get("starred"):
            rows = rows.filter(stars__user=self.membership.user)
        if data.get("mentioned"):
            rows = rows.filter(comments__mentions=self.membership.user).distinct()
        if data.get("board"):
            rows = rows.filter(boards=data["board"])
        if data.get("kit"):
            rows = rows.filter(job__kit_id=data["kit"])
        if data.get("edits_of"):
            rows = rows.filter(job__in=jobs_using(data["edits_of"]))
        return rows

    def _stacked(
        self, rows: QuerySet[GeneratedImage], data: dict[str, Any]
    ) -> QuerySet[GeneratedImage]:
        """A set of images as one card: of a set's images that match, only the first.
        Its siblings are narrowed by the same filters, so a set whose third image alone
        is approved still shows, with that image on top, under "Approved"."""
        siblings: QuerySet[GeneratedImage] = GeneratedImage.objects.kept().filter(
            job_id=OuterRef("job_id"),
            index__lt=OuterRef("index"),
            job__parameters__enable_sequential=True,
        )
        earlier = self._dated(self._narrowed(siblings, data), data)
        return rows.filter(~Exists(earlier))

    def set_job(self) -> Job | None:
        """The job whose images the grid shows, when it shows one job's (a set opened)."""
        self.is_valid()
        job_id = self.cleaned_data.get("job")
        if not job_id:
            return None
        return (
            Job.objects.filter(pk=job_id, team_id=self.membership.team_id)
            .select_related("author")
            .first()
        )

    def edited_image(self) -> GeneratedImage | None:
        """The image whose edits the grid shows, when it shows an image's edits."""
        self.is_valid()
        image_id = self.cleaned_data.get("edits_of")
        if not image_id:
            return None
        return (
            GeneratedImage.objects.filter(pk=image_id, team_id=self.membership.team_id)
            .select_related("job")
            .first()
        )

    @staticmethod
    def _dated(rows: QuerySet[GeneratedImage], data: dict[str, Any]) -> QuerySet[GeneratedImage]:
        """`rows` made from the `since` day to the end of the `until` day, in local time."""
        zone = timezone.get_current_timezone()
        if data.get("since"):
            rows = rows.filter(created_at__gte=datetime.combine(data["since"], time(), zone))
        if data.get("until"):
            end = datetime.combine(data["until"], time(), zone) + timedelta(days=1)
            rows = rows.filter(created_at__lt=end)
        return rows

    def page(self, after: Cursor | None) -> tuple[list[GeneratedImage], Cursor | None]:
        rows = self.images()
        if after is not None:
            rows = rows.filter(
                Q(created_at__lt=after.created_at) | Q(created_at=after.created_at, id__lt=after.id)
            )
        items = list(rows[: PAGE_SIZE + 1])
        more = len(items) > PAGE_SIZE
        items = items[:PAGE_SIZE]
        cursor = Cursor(items[-1].created_at, items[-1].pk) if more else None
        return items, cursor

    def neighbours(
        self, image: GeneratedImage
    ) -> tuple[GeneratedImage | None, GeneratedImage | None]:
        """The newer and the older image next to this one under the same filters (in an
        opened set: the one before and the one after it in the set)."""
        rows = self.images()
        if self.cleaned_data.get("job"):
            before = rows.filter(index__lt=image.index).order_by("-index", "-id").first()
            return before, rows.filter(index__gt=image.index).first()
        newer = (
            rows.filter(
                Q(created_at__gt=image.created_at) | Q(created_at=image.created_at, id__gt=image.pk)
            )
            .order_by("created_at", "id")
            .first()
        )
        older = rows.filter(
            Q(created_at__lt=image.created_at) | Q(created_at=image.created_at, id__lt=image.pk)
        ).first()
        return newer, older

    def active_count(self) -> int:
        """How many filters besides the search narrow the grid: the count beside "Filters"
        while they are folded away on a phone."""
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        return sum(1 for name in self.fields if name not in self.HIDDEN and data.get(name))

    def query_string(self) -> str:
        """The filters as a query string, for links that keep them."""
        if not self.is_bound or not hasattr(self.data, "copy"):
            return ""
        kept = self.data.copy()
        kept.pop("after", None)
        return kept.urlencode()


COMMENT_MOST = 2000  # characters


def read_comment(body: str, box_text: str, image: GeneratedImage) -> tuple[Box | None, str]:
    """A posted comment's pinned area (or None), and what is wrong with the comment ("" if
    nothing is). `body` comes stripped; `box_text` is "left,top,right,bottom" or blank."""
    if not body:
        return None, "Write something first."
    if len(body) > COMMENT_MOST:
        return None, f"A comment is at most {COMMENT_MOST:,} characters; this one is {len(body):,}."
    if not box_text.strip():
        return None, ""
    try:
        boxes = parse_boxes(box_text)
    except ValueError:
        return None, "The pinned area must be four whole numbers: left, top, right, bottom."
    box = boxes[0] if boxes else None
    if box and not (0 <= box[0] < box[2] <= image.width and 0 <= box[1] < box[3] <= image.height):
        return box, f"The pinned area must lie inside the {image.width}×{image.height} image."
    return box, ""
