"""Why a request is refused: one exception carrying the status, a reason slug and headers."""

from payplane_core.problems import Problem, retry_after


class Denied(Exception):
    def __init__(
        self,
        status: int,
        reason: str,
        detail: str,
        *,
        retry_after_seconds: float | None = None,
        www_authenticate: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail
        self.retry_after_seconds = retry_after_seconds
        self.www_authenticate = www_authenticate

    def problem(self) -> Problem:
        headers = {}
        if self.retry_after_seconds is not None:
            headers["Retry-After"] = retry_after(self.retry_after_seconds)
        if self.www_authenticate:
            headers["WWW-Authenticate"] = self.www_authenticate
        return Problem(self.status, self.reason, self.detail, headers=headers, reason=self.reason)


def unavailable(what: str) -> Denied:
    return Denied(
        503,
        "dependency-unavailable",
        f"{what} is unreachable; retry shortly.",
        retry_after_seconds=1,
    )
