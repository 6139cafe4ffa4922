"""Serving errors, each carrying the HTTP status and error type a client sees.

They extend the core `D2LError` so code outside the server (the CLI) can still catch them all.
"""
from __future__ import annotations

from http import HTTPStatus

from ..errors import D2LError


class ServingError(D2LError):
    """A request-level failure with a fixed status; the message goes to the client verbatim."""

    status: HTTPStatus = HTTPStatus.BAD_REQUEST
    err_type: str = "BadRequestError"
    param: str | None = None

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        if param is not None:
            self.param = param


class DocumentNotFound(ServingError):
    status = HTTPStatus.NOT_FOUND
    err_type = "NotFoundError"


class PayloadTooLarge(ServingError):
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    err_type = "PayloadTooLargeError"


class OverRank(ServingError):
    """The adapter needs more rank than `--max-lora-rank` and the policy says refuse."""


class CorruptAdapter(ServingError):
    """A stored adapter failed its checksum; it is quarantined, never served."""

    status = HTTPStatus.NOT_FOUND
    err_type = "NotFoundError"


class NotReady(ServingError):
    status = HTTPStatus.SERVICE_UNAVAILABLE
    err_type = "ServiceUnavailableError"


class RegistrationFailed(ServingError):
    """The engine refused the adapter; the store entry was rolled back."""

    status = HTTPStatus.INTERNAL_SERVER_ERROR
    err_type = "InternalServerError"


class DocumentTooLong(ServingError):
    """More tokens than `--max-document-tokens`: the client must split or shorten it."""

    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    err_type = "PayloadTooLargeError"


class GeneratorOutOfMemory(ServingError):
    """The generator ran out of memory on this document. 413, not 503: retrying the same document
    on the same server fails the same way; a shorter one may not."""

    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    err_type = "PayloadTooLargeError"


class InternalizeFailed(ServingError):
    """The generator raised on this document; the upload fails, the server keeps serving."""

    status = HTTPStatus.INTERNAL_SERVER_ERROR
    err_type = "InternalServerError"
