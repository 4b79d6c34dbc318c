"""The explore form: one prompt, up to four models, up to four seeds, one shape."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, cast

from django import forms

from studio.accounts.models import Team
from studio.dashscope.catalog import SEED_MAX
from studio.generation.explore import MOST_MODELS, MOST_SEEDS, SHAPES, explore_models
from studio.generation.forms import PromptField


class ExploreForm(forms.Form):
    field_order = [
        "prompt",
        "negative_prompt",
        "with_references",
        "model_names",
        "rows",
        "seed_values",
        "shape",
    ]
    prompt = PromptField(widget=forms.Textarea(attrs={"rows": 4}))
    negative_prompt = PromptField(
        required=False,
        label="Avoid",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Sent to the models that take it.",
    )
    model_names = forms.MultipleChoiceField(
        label="Models",
        widget=forms.CheckboxSelectMultiple,
        help_text=f"Up to {MOST_MODELS}: one column each.",
    )
    rows = forms.TypedChoiceField(
        label="Seeds",
        choices=[(i, str(i)) for i in range(1, MOST_SEEDS + 1)],
        coerce=int,
        initial=2,
        help_text="One row each: every model draws the same seeds.",
    )
    seed_values = forms.CharField(
        required=False,
        label="Your own seeds",
        max_length=60,
        help_text="Leave empty for new ones, or write some, e.g. 7, 42.",
    )
    shape = forms.ChoiceField(
        choices=list(SHAPES.items()),
        initial="1:1",
        help_text="Models that edit reference images keep the last image's shape.",
    )
    with_references = forms.BooleanField(required=False)

    def __init__(
        self, *args: Any, team: Team, references: Sequence[tuple[str, str]] = (), **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.references = references
        field = cast(forms.MultipleChoiceField, self.fields["model_names"])
        offered = explore_models(team, references=bool(references))
        field.choices = [(spec.name, spec.label) for spec in offered]
        if references:
            count = len(references)
            self.fields[
                "with_references"
            ].label = f"With the {count} reference image{'s' * (count != 1)} on your Edit form"
            self.fields["with_references"].help_text = (
                "Sent, with their regions, to the models that take them; the others draw "
                "from the prompt alone. Models that only edit need them."
            )
        else:
            del self.fields["with_references"]

    def clean_model_names(self) -> list[str]:
        names = cast(list[str], self.cleaned_data["model_names"])
        if len(names) > MOST_MODELS:
            raise forms.ValidationError(
                f"Choose at most {MOST_MODELS} models; {len(names)} are ticked."
            )
        return names

    def clean_seed_values(self) -> list[int]:
        text = self.cleaned_data.get("seed_values", "")
        seeds = []
        for part in (p for p in re.split(r"[\s,;]+", text) if p):
            if not part.isdigit() or int(part) > SEED_MAX:
                raise forms.ValidationError(
                    f"“{part[:12]}” is not a seed: write whole numbers from 0 to {SEED_MAX:,}."
                )
            seeds.append(int(part))
        return seeds

    def clean(self) -> dict[str, Any] | None:
        data = super().clean() or {}
        rows, seeds = data.get("rows"), data.get("seed_values") or []
        if rows is not None and len(seeds) > rows:
            self.add_error(
                "seed_values",
                f"{len(seeds)} seeds are written for {rows} row{'s' * (rows != 1)}; "
                "choose more seeds or write fewer.",
            )
        return data

    def seeds(self) -> list[int | None]:
        """The rows' seeds: those written, then new ones (None) for the rest."""
        data = self.cleaned_data
        written: list[int | None] = list(data.get("seed_values") or [])
        return written + [None] * (data["rows"] - len(written))
