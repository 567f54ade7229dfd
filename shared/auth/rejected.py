"""The one authentication failure: 401, code `invalid_token`, and nothing else leaves the process."""

from __future__ import annotations

from shared.errors import Unauthorized


class TokenRejected(Unauthorized):
    """An authentication failure with an internal, code-chosen `reason` label.

    The response body and headers are those of `Unauthorized` (one stable code for every cause), so a
    caller cannot probe which check failed. `reason` is a fixed label (never a claim or token value)
    that tests assert on, and that audit/metrics may record.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__()
