"""The witness's WSGI face (C2SP tlog-witness): ``POST /add-checkpoint``, ``GET /`` and, for
monitors, ``GET /<origin hash>/checkpoint`` — the origin hash is the SHA-256 of the log's origin
in lowercase hex, as the current text asks (an earlier revision put the origin itself in the path;
that form is still answered).

Run by ``callproof witness serve``; the witness itself, its state and its rules are in
:mod:`callproof.witness.server`.

    >>> app = create_app(Witness.open("witness-data"))
    >>> app.test_client().post("/add-checkpoint", data=body).status_code
    200
    >>> origin_hash = hashlib.sha256(b"shop.example/callproof-log").hexdigest()
    >>> app.test_client().get(f"/{origin_hash}/checkpoint").text  # the cosigned note
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from callproof.errors import WitnessError
from callproof.tlog.cosign import MAX_REQUEST_BYTES, SIZE_CONTENT_TYPE
from callproof.witness.server import Witness

__all__ = ["create_app"]


def create_app(witness: Witness) -> Flask:
    """The witness as a WSGI app: ``POST /add-checkpoint`` (C2SP tlog-witness), ``GET /`` and
    ``GET /<origin hash>/checkpoint`` (the last checkpoint it cosigned for that log, for
    monitors)."""
    app = Flask("callproof.witness")
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES

    def text(body: str, status: int = 200, content_type: str = "text/plain; charset=utf-8"
             ) -> Response:
        return Response(body, status, content_type=content_type)

    @app.post("/add-checkpoint")
    def add_checkpoint() -> Response:
        body = request.get_data(cache=False)
        try:
            return text(witness.add_checkpoint(body))
        except WitnessError as e:
            if e.size is not None:
                response = text(f"{e.size}\n", e.status, SIZE_CONTENT_TYPE)
                response.headers["X-Callproof-Reason"] = e.message
                return response
            return text(e.message + "\n", e.status)

    @app.get("/<path:log>/checkpoint")
    def latest(log: str) -> Response:
        origin = _origin_named(log, witness.logs())
        try:
            found = witness.latest(origin)
        except WitnessError as e:
            return text(e.message + "\n", e.status)
        if found is None:
            return text(f"this witness has cosigned no checkpoint of {origin!r}\n", 404)
        response = text(found)
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/")
    def index() -> Response:
        logs = "".join(f"  {origin}  (GET /{origin_hash(origin)}/checkpoint)\n"
                       for origin in sorted(witness.logs()))
        return text(f"callproof witness (C2SP tlog-witness)\nkey: {witness.vkey()}\n"
                    f"POST /add-checkpoint\nlogs witnessed:\n{logs}")

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException) -> Response:
        return text(f"{e.name}\n", e.code or 500)

    return app


_ORIGIN_HASH = re.compile(r"[0-9a-f]{64}")


def origin_hash(origin: str) -> str:
    """How the monitoring path names a log: SHA-256 of its origin, lowercase hex."""
    return hashlib.sha256(origin.encode("utf-8")).hexdigest()


def _origin_named(log: str, known: Iterable[str]) -> str:
    """The origin a monitoring path names: a known log whose origin hash it is, else the path
    itself (the earlier revision's form, or an unknown log that answers 404)."""
    if _ORIGIN_HASH.fullmatch(log):
        for origin in known:
            if origin_hash(origin) == log:
                return origin
    return log
