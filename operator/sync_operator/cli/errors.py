"""Exit codes and how failures read: usage errors (2) apart from API errors (1).

The API server's own message is printed verbatim: it already names the field and the
rule (CEL or schema), and rephrasing it would hide the real cause.
"""

from __future__ import annotations

from sync_operator.kube import ApiError

EXIT_OK = 0
EXIT_API_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """The command line itself is wrong; nothing was sent to the API server."""


def api_error_text(err: ApiError) -> str:
    """kubectl's shape: ``Error from server (Invalid): <the server's message>``."""
    reason = err.reason or str(err.status)
    return f"Error from server ({reason}): {err.message}"


def not_found(resource: str, name: str) -> ApiError:
    """The same error the API server gives for a missing object, for client-side checks."""
    return ApiError(404, "NotFound", f'{resource} "{name}" not found')
