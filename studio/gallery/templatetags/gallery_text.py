from __future__ import annotations

import re

from django import template
from django.template.defaultfilters import linebreaksbr
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe

from studio.gallery.models import Comment

register = template.Library()

# A username's characters, but not a full stop or hyphen at its end: "Thanks @dan." names dan.
MENTION = re.compile(r"@([\w.@+-]*[\w@+])")


@register.filter
def with_mentions(comment: Comment) -> SafeString:
    """The comment's text, escaped, with the teammates it mentions marked."""
    names = {user.username for user in comment.mentions.all()}
    text = str(conditional_escape(comment.body))

    def mark(match: re.Match[str]) -> str:
        return f'<mark class="mention">@{match[1]}</mark>' if match[1] in names else match[0]

    return mark_safe(linebreaksbr(MENTION.sub(mark, text), autoescape=False))
