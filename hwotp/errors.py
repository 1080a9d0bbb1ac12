"""Domain errors. Domain code raises these; hwotp.server maps them to gRPC status codes in one place.

`status` names the status code each stands for, for domain code that records
errors (metrics, audit) without knowing gRPC.
"""


class HwotpError(Exception):
    """Base of every error a caller is told about."""

    status = "INTERNAL"


class InvalidInput(HwotpError):
    """The request is malformed (INVALID_ARGUMENT)."""

    status = "INVALID_ARGUMENT"


class NotFound(HwotpError):
    """The named thing does not exist (NOT_FOUND)."""

    status = "NOT_FOUND"


class FailedPrecondition(HwotpError):
    """The request is fine but the state does not allow it (FAILED_PRECONDITION)."""

    status = "FAILED_PRECONDITION"


class Unavailable(HwotpError):
    """A dependency cannot be reached (UNAVAILABLE)."""

    status = "UNAVAILABLE"


class DeadlineExceeded(HwotpError):
    """The time budget ran out (DEADLINE_EXCEEDED)."""

    status = "DEADLINE_EXCEEDED"


class PermissionDenied(HwotpError):
    """The caller is known but not allowed this (PERMISSION_DENIED)."""

    status = "PERMISSION_DENIED"


class ResourceExhausted(HwotpError):
    """Throttled or over a rate limit (RESOURCE_EXHAUSTED); retry after `retry_after_s`."""

    status = "RESOURCE_EXHAUSTED"

    def __init__(self, message: str, retry_after_s: int):
        super().__init__(message)
        self.retry_after_s = retry_after_s
