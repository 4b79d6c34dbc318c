"""The one error type of the provider layer, and the refusal raised before sending."""

from __future__ import annotations

from studio.dashscope.problems import Problem

# Codes worth trying again after a pause. Throttling.AllocationQuota is a 429 too, but it
# means the account's quota is spent: trying again only wastes the pause.
RETRYABLE_CODES = frozenset({"Throttling", "Throttling.RateQuota"})
NOT_RETRYABLE_CODES = frozenset(
    {"Throttling.AllocationQuota", "InvalidParameter", "DataInspectionFailed", "InvalidApiKey"}
)


def is_retryable(status: int | None, code: str | None) -> bool:
    if code in NOT_RETRYABLE_CODES:
        return False
    if code in RETRYABLE_CODES:
        return True
    return status is not None and status >= 500


class DashScopeError(Exception):
    """A request the provider refused or that could not be completed.

    `status` is the HTTP status (None when no response arrived); `code` and `message` are
    the provider's; `request_id` is what support asks for.
    """

    def __init__(
        self,
        *,
        status: int | None,
        code: str,
        message: str,
        request_id: str | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.retryable = is_retryable(status, code) if retryable is None else retryable
        self.retry_after = retry_after
        super().__init__(self._describe())

    def _describe(self) -> str:
        details = []
        if self.status is not None:
            details.append(f"HTTP {self.status}")
        if self.request_id:
            details.append(f"request {self.request_id}")
        suffix = f" ({', '.join(details)})" if details else ""
        return f"{self.code}: {self.message}{suffix}"


class SubmitUncertain(DashScopeError):
    """A generation request was sent but no answer came back.

    The provider may or may not have started it (and may bill it). Sending it again could
    make it twice, so the caller must reconcile, for example through the task list.
    """


class StreamError(DashScopeError):
    """A stream that ended without its last event. Never sent again: the provider may
    have made, and will bill, the images it already sent."""


class StreamStalled(StreamError):
    """No event came within the stall limit."""


class StreamDeadlineExceeded(StreamError):
    """The stream did not end within its deadline."""


class StreamCut(StreamError):
    """The connection ended or broke before the last event."""


class RequestRefused(ValueError):
    """The studio refused a request before sending it: it breaks a provider limit."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))
