from app.core.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound


class InvalidCredentials(DomainError):
    code = "invalid_credentials"
    http_status = 401


class LoginLocked(DomainError):
    code = "login_locked"
    http_status = 429


class EmailTaken(Conflict):
    code = "email_taken"


class WeakPassword(InvalidInput):
    code = "weak_password"


class UnknownRole(InvalidInput):
    code = "unknown_role"


class StaffNotFound(NotFound):
    code = "staff_not_found"


class ApiKeyNotFound(NotFound):
    code = "api_key_not_found"


class PermissionDenied(Forbidden):
    code = "permission_denied"


class ResetTokenInvalid(InvalidInput):
    """A password-reset link that is unknown, used or expired."""

    code = "reset_token_invalid"


class ResetRequestsThrottled(DomainError):
    code = "reset_throttled"
    http_status = 429
