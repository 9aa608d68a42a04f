"""The issuer API for call-center software (JSON, bearer keys). Being built: see issue #3."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")
