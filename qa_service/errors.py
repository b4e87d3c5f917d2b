"""Domain errors. The core raises these; the HTTP layer maps them to one error shape in one place,
and the CLI prints their message and exits non-zero."""

from __future__ import annotations


class QaError(Exception):
    """Base class: ``code`` is a stable machine-readable name, the message is for people."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class CorpusError(QaError):
    """A corpus or import file is invalid; the message names the file, line and entry."""

    code = "invalid_corpus"


class RulesError(QaError):
    """The red-flag rules file is invalid; the message names the file, line and rule."""

    code = "invalid_rules"


class StorageError(QaError):
    """The feedback database cannot be opened or written."""

    code = "storage_unavailable"


class UnauthorizedError(QaError):
    """An admin request without the right API key."""

    code = "unauthorized"


class AdminDisabledError(QaError):
    """Admin endpoints are off because no API key is configured."""

    code = "admin_disabled"


class ReloadError(QaError):
    """A newly published index was refused; the previous one keeps serving."""

    code = "reload_failed"


class IndexUnavailableError(QaError):
    """An index is missing, corrupt, or does not match the configuration."""

    code = "index_unavailable"


class IndexMismatchError(IndexUnavailableError):
    """The index was built with another model or dimension than the one configured."""

    code = "index_mismatch"


class BuildInProgressError(QaError):
    """Another build into the same index folder is running."""

    code = "build_in_progress"


class NotFoundError(QaError):
    code = "not_found"


class InvalidQuestionError(QaError):
    code = "invalid_request"


class NotReadyError(QaError):
    """The service has no usable index loaded yet."""

    code = "not_ready"


class ModelLoadError(QaError):
    """The configured embedding model cannot be loaded."""

    code = "model_unavailable"
