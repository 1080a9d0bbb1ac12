"""Domain errors. Servicers raise these; hwotp.server maps them to gRPC status codes in one place."""


class HwotpError(Exception):
    """Base of every error a caller is told about."""


class InvalidInput(HwotpError):
    """The request is malformed (INVALID_ARGUMENT)."""


class NotFound(HwotpError):
    """The named thing does not exist (NOT_FOUND)."""


class FailedPrecondition(HwotpError):
    """The request is fine but the state does not allow it (FAILED_PRECONDITION)."""


class Unavailable(HwotpError):
    """A dependency cannot be reached (UNAVAILABLE)."""


class DeadlineExceeded(HwotpError):
    """The time budget ran out (DEADLINE_EXCEEDED)."""
