"""``rkat-rest``: the host over HTTP, JSON bodies and Server-Sent Events.

A quart-trio app (:mod:`.app`) served by hypercorn's trio worker (:mod:`.main`).
Each route parses its request (:mod:`.requests`), calls the one in-process API,
:class:`actors.SessionService`, and encodes the answer (:mod:`.wire`); every
error is ``{error, code, details?}`` with the status from the shared error table
(:mod:`.responses`). Session events stream as SSE (:mod:`.sse` frames them,
:mod:`.streams` follows the session), and ``GET /openapi.json`` describes it all
(:mod:`.openapi`). See ``docs/rest.md``.
"""
