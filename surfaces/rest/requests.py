"""Reading a request: the JSON body, query parameters, session locators, SSE cursors.

Everything here turns a malformed request into a :class:`MeerkatError` whose
message names what was wrong, so the error handler answers it as JSON with the
status from the shared table: a body that is not JSON is PARSE_ERROR (400), a
wrong ``Content-Type`` UNSUPPORTED_MEDIA_TYPE (415), a wrong field INVALID_PARAMS
(400). Too-large bodies are stopped by Quart (``MAX_CONTENT_LENGTH``) before they
are read and reported by :mod:`.responses` as PAYLOAD_TOO_LARGE (413).
"""

from __future__ import annotations

from typing import Any

from quart import Request

from meerkat.errors import ErrorCode, InvalidParams, MeerkatError, error_from_code
from meerkat.validation import validate_cursor
from meerkat.views import session_id_from_ref
from surfaces.json_input import decode_json
from surfaces.session_params import require_object

__all__ = ["json_object", "int_query", "bool_query", "label_query", "session_locator", "resume_cursor",
           "mismatch"]


def _is_json_type(mimetype: str) -> bool:
    return mimetype == "application/json" or (mimetype.startswith("application/") and mimetype.endswith("+json"))


async def json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object; 415 unless it is declared JSON, 400 if it is not an object."""
    if not _is_json_type(request.mimetype):
        got = request.headers.get("Content-Type") or "none"
        raise error_from_code(ErrorCode.UNSUPPORTED_MEDIA_TYPE,
                              f"Content-Type must be application/json (got {got})")
    raw = await request.get_data(as_text=False)
    if not raw.strip():
        raise error_from_code(ErrorCode.PARSE_ERROR, "request body is empty: expected a JSON object")
    # Whole numbers as ints: the OpenAPI document's "integer" (JSON Schema's) includes 770.0.
    body = decode_json(raw, "malformed JSON body", integral_floats_as_int=True)
    if body is None:
        raise InvalidParams("request body must be an object, got null")
    return require_object(body, "request body")


def int_query(request: Request, name: str) -> int | None:
    """An optional integer query parameter (range checks are the service's).

    Given empty (``?offset=``) or more than once it is refused, not read as absent or as its first value:
    the OpenAPI document calls both invalid.
    """
    values = request.args.getlist(name)
    if not values:
        return None
    if len(values) > 1:
        raise InvalidParams(f"query parameter `{name}` is given {len(values)} times: give it once")
    value = values[0]
    try:
        return int(value, 10)
    except ValueError:
        raise InvalidParams(f"query parameter `{name}` must be an integer, got {value!r}") from None


def bool_query(request: Request, name: str) -> bool:
    """An optional boolean query parameter: true/false, 1/0, yes/no; absent is false."""
    value = request.args.get(name)
    if value is None or value == "":
        return False
    lowered = value.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise InvalidParams(f"query parameter `{name}` must be true or false, got {value!r}")


def label_query(request: Request) -> dict[str, str] | None:
    """Repeatable ``label=key=value`` filters (``labels=`` is accepted too); None when absent."""
    pairs = request.args.getlist("label") + request.args.getlist("labels")
    if not pairs:
        return None
    labels: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidParams(f"query parameter `label` must look like key=value, got {pair!r}")
        labels[key] = value
    return labels


def session_locator(raw: str, realm_id: str) -> str:
    """The session id a path names: a UUID, or ``<realm>:<uuid>`` for this server's realm."""
    return session_id_from_ref(raw, realm_id)


def resume_cursor(request: Request) -> int | None:
    """Where an event stream resumes: ``Last-Event-ID`` (a reconnect) wins over ``?after=``."""
    header = request.headers.get("Last-Event-ID")
    if header is not None and header.strip():
        return _cursor(header.strip(), "Last-Event-ID header")
    value = request.args.get("after")
    if value is None or value == "":
        return None
    return _cursor(value, "query parameter `after`")


def _cursor(text: str, what: str) -> int:
    try:
        seq = int(text, 10)
    except ValueError:
        seq = -1
    if seq < 0:
        raise InvalidParams(f"{what} must be an event seq (an integer >= 0), got {text!r}")
    validate_cursor(seq, what)  # past the stores' range too, named as the client sent it
    return seq


def mismatch(path_id: str, body_id: Any, realm_id: str) -> MeerkatError | None:
    """An error if a body's ``session_id`` names another session than the path does."""
    if body_id is None:
        return None
    if not isinstance(body_id, str):
        return InvalidParams(f"session_id must be a string, got {type(body_id).__name__}")
    try:
        same = session_locator(body_id, realm_id) == path_id
    except MeerkatError:
        same = False
    if same:
        return None
    return InvalidParams(f"Session ID mismatch: path={path_id} body={body_id}",
                         details={"path_session_id": path_id, "body_session_id": body_id})
