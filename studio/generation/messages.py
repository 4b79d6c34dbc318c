"""What a designer reads when a job does not simply succeed: what happened, what it cost,
and what to do next."""

from __future__ import annotations

from studio.dashscope.errors import DashScopeError, RequestRefused

SUBMIT_UNCERTAIN = (
    "The provider did not answer while this job was being sent, and the studio could not "
    "find it there. Nothing was charged; please try again."
)
SUBMIT_UNCHECKED = (
    "The provider did not answer while this job was being sent, and could not be asked about "
    "it for a day. Nothing was charged to your quota; the provider may have billed it."
)
TIMED_OUT = (
    "The provider did not start this job within the time limit, so it was cancelled. "
    "Nothing was charged; please try again."
)
TIMED_OUT_WATCHING = (
    "Taking longer than usual. The studio keeps watching and will store the images if they arrive."
)
CANCELED = "Cancelled; nothing was charged."
CANCELED_BEFORE_SENT = "Cancelled before it was sent; nothing was charged."
EXPIRED = "The provider no longer knows this job (its records last 24 hours). Nothing was charged."
WORKER_CRASHED = (
    "Processing this job stopped the studio's worker several times, so it was stopped. "
    "Nothing was charged for images that were not stored."
)
DOWNLOAD_FAILED = (
    "The provider made the images but they could not be downloaded. Nothing was charged; "
    "an administrator has been told."
)
RESULTS_EXPIRED = (
    "The provider made the images, but its links to them expired before the studio could "
    "store them. Nothing was charged for them; an administrator has been told."
)
# A held download, as the designer reads it: made, on its way, nothing to do.
DOWNLOAD_HELD = (
    "Your images are made. The studio is still fetching them and will add them here as soon "
    "as it can; there is nothing you need to do."
)
DOWNLOAD_HELD_LABEL = "Made; fetching images"
DOWNLOAD_HELD_EVENT = "Made by the provider; the studio keeps trying to fetch the images."

# Why a download is held, as the staff read it on the studio's health page: what to fix.
_HOLD_REASONS = {
    "ResultURLRefused": (
        "The result URL's host is not an allowed result host (STUDIO_RESULT_HOSTS), or it "
        "resolves to an internal address."
    ),
    "ResultTLSFailed": (
        "The result host's certificate could not be verified: a proxy in the way, or an "
        "out-of-date CA bundle."
    ),
    "ResultTooLarge": "The result is larger than the studio's download size cap.",
    "StorageUnavailable": "The media storage could not save the image (unavailable or full).",
    "InvalidResult": "The downloaded file is not an image the studio takes.",
    "WorkerCrashed": (
        "The worker stopped during the download several times: look at its log (storage that "
        "hangs past the task timeout, memory)."
    ),
}


def hold_reason(code: str) -> str:
    return _HOLD_REASONS.get(code, f"Downloads kept failing ({code}) after their retries.")


_BY_CODE = {
    "DataInspectionFailed": (
        "The provider refused this content: the prompt or an image may break its content "
        "rules. Nothing was charged; change the prompt or the images and try again."
    ),
    "Throttling.AllocationQuota": (
        "The studio's account with the provider has used up its quota. Nothing was charged; "
        "tell an administrator."
    ),
    "InvalidApiKey": "The studio's provider key was refused. Tell an administrator.",
    "Arrearage": "The studio's provider account is not in good standing. Tell an administrator.",
    "InvalidParameter.FileDownload": "The provider could not read an input image.",
}


def for_error(error: DashScopeError) -> str:
    base = _BY_CODE.get(error.code)
    if base is None and error.code.startswith("DataInspection"):
        base = _BY_CODE["DataInspectionFailed"]
    if base is None:
        base = f"The provider refused this job ({error.code}: {error.message})."
    return _with_request(base, error.request_id)


def for_task_failure(code: str | None, message: str | None) -> str:
    code = code or "Failed"
    if code in _BY_CODE or code.startswith("DataInspection"):
        return _BY_CODE.get(code, _BY_CODE["DataInspectionFailed"])
    return (
        f"The provider could not make this image ({code}: {message or 'no details'}). "
        "Nothing was charged."
    )


def turned_away(error: DashScopeError, seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    text = (
        f"The provider turned this job away as busy for {minutes} minute"
        f"{'s' if minutes != 1 else ''} "
        f"(last answer {error.code}: {error.message}). Nothing was charged; please try "
        "again later, and tell an administrator if it goes on."
    )
    return _with_request(text, error.request_id)


def refused(error: RequestRefused) -> str:
    return "This request breaks a provider limit: " + " ".join(p.message for p in error.problems)


def partial(stored: int, wanted: int) -> str:
    return f"{stored} of {wanted} images were made and stored; you are charged for {stored}."


def stored(count: int) -> str:
    return f"{count} image{'s' if count != 1 else ''} stored."


def _with_request(text: str, request_id: str | None) -> str:
    return f"{text} (Provider request {request_id}.)" if request_id else text


# A piece of mixed text and images whose stream ended early. What arrived is kept and
# charged; the studio never sends it again, as the provider may have billed it.
def _pictures(count: int) -> str:
    return f"{count} picture{'s' if count != 1 else ''}"


def _after(count: int) -> str:
    return f"after {_pictures(count)}" if count else "before any picture"


def stream_failed(count: int, code: str, message: str) -> str:
    return (
        f"The provider stopped the piece with an error ({code}: {message}) {_after(count)}; "
        "what it had written and drawn is kept, and the rest failed."
    )


_STOPPED = {
    "StreamStalled": "sent nothing for too long",
    "StreamDeadline": "took longer than the studio waits",
    "StreamCut": "broke off the connection",
}


def stream_stopped(count: int, code: str) -> str:
    why = _STOPPED.get(code, "broke off the connection")
    return (
        f"The provider {why} {_after(count)}; what it had written and drawn is kept, and "
        "the rest failed. It is not sent again, as it may have been billed."
    )


def stream_cut(count: int) -> str:
    return (
        f"The connection broke {_after(count)}; what arrived is kept, and the rest failed. "
        "It is not sent again, as it may have been billed."
    )


def worker_stopped_mid_stream(count: int) -> str:
    if not count:
        return (
            "The worker stopped while the provider was writing this piece, before any picture "
            "arrived. It is not sent again, as the provider may have billed it; nothing was "
            "charged to your quota."
        )
    return (
        f"The worker stopped while the provider was writing this piece, after "
        f"{_pictures(count)} had arrived: those are stored; whether the provider made more "
        "is not known. It is not sent again, as it may have been billed."
    )


def piece_stored(count: int, broke_off: str) -> str:
    """A piece that ended early, once its pictures are stored: what it said, and the count."""
    return f"{broke_off} {stored(count)}"
