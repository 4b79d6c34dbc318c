"""The address guard of result downloads: which hosts a result URL may name.

The provider hands out result URLs on its own storage buckets; the client fetches nothing
else. Host patterns come from settings (STUDIO_RESULT_HOSTS), checked at start-up by
`host_rule`, and every URL is read here the same way the download will read it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import urlsplit

import httpx

# Result URLs the provider hands out live on its OSS buckets; nothing else is fetched. The
# seeds write them `dashscope-result-<region>.oss-<region>.aliyuncs.com` (S0:190, S0:360)
# and `dashscope-xxx.oss-xxx.aliyuncs.com` (S2:287); real wan answers also come from
# `dashscope-<id>.oss-accelerate.aliyuncs.com`. A `*` stands for one part of one label.
DEFAULT_RESULT_HOSTS = ("dashscope-*.oss-*.aliyuncs.com",)
_HOST_PATTERN = re.compile(r"^(?:[a-z0-9*](?:[a-z0-9*-]*[a-z0-9*])?\.)+[a-z0-9-]+\.[a-z]{2,}$")


def host_rule(patterns: Sequence[str]) -> re.Pattern[str]:
    """One expression for host patterns such as `dashscope-*.oss-*.aliyuncs.com`: each `*`
    matches letters, digits and hyphens within a single label, never a dot."""
    parts = []
    for pattern in patterns:
        pattern = pattern.strip().lower()
        labels = pattern.split(".")
        # A wildcard in the domain itself, or in front of it with nothing fixed beside it
        # (`*.aliyuncs.com`), would let in any customer's bucket on the same cloud.
        wide = any("*" in label for label in labels[-2:]) or all(
            label == "*" for label in labels[:-2]
        )
        if not _HOST_PATTERN.match(pattern) or wide:
            raise ValueError(
                f"{pattern!r} is not a result host pattern: write a host name such as "
                "dashscope-*.oss-*.aliyuncs.com, with * only inside the labels before "
                "the last two, and some fixed text in front of the domain."
            )
        parts.append(
            ".".join(re.escape(label).replace(r"\*", "[a-z0-9-]+") for label in pattern.split("."))
        )
    return re.compile(rf"^(?:{'|'.join(parts)})$")


def is_result_url(url: str, rule: re.Pattern[str]) -> bool:
    """Whether `url` is on one of the provider's result buckets, read the way the
    download will read it: https, the default port, no user part, a host `rule` allows."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return False
    if parsed.scheme != "https" or parsed.userinfo or parsed.port not in (None, 443):
        return False
    # Both parsers must see the same host: a URL read two ways is not the provider's.
    if (urlsplit(url).hostname or "") != parsed.host:
        return False
    return bool(rule.match(parsed.host))
