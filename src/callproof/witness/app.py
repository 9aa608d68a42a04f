"""The witness's WSGI face: ``POST /add-checkpoint`` (C2SP tlog-witness v1.0.0) and ``GET /``.

Run by ``callproof witness serve``; the witness itself, its state and its rules are in
:mod:`callproof.witness.server`.

    >>> app = create_app(Witness.open("witness-data"))
    >>> app.test_client().post("/add-checkpoint", data=body).status_code
    200
"""

from __future__ import annotations

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from callproof.errors import WitnessError
from callproof.tlog.cosign import MAX_REQUEST_BYTES, SIZE_CONTENT_TYPE
from callproof.witness.server import Witness

__all__ = ["create_app"]


def create_app(witness: Witness) -> Flask:
    """The witness as a WSGI app: ``POST /add-checkpoint`` (C2SP tlog-witness) and ``GET /``."""
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

    @app.get("/")
    def index() -> Response:
        logs = "".join(f"  {origin}\n" for origin in sorted(witness.logs()))
        return text(f"callproof witness (C2SP tlog-witness v1.0.0)\nkey: {witness.vkey()}\n"
                    f"POST /add-checkpoint\nlogs witnessed:\n{logs}")

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException) -> Response:
        return text(f"{e.name}\n", e.code or 500)

    return app
