"""The JSON API under ``/api/v1``: one blueprint, with one nested blueprint per resource.

Nesting gives every resource module its own ``bp`` (no module imports this package back)
while the parent carries what all routes share: bearer-token authentication before each
request and the JSON error format (``webapp.api.errors``). Register it with
``app.register_blueprint(webapp.api.bp)``.
"""

from __future__ import annotations

from flask import Blueprint

from webapp.api import events, handoffs, inbound, openapi, prospects, sequences
from webapp.api.auth import require_token
from webapp.api.errors import API_PREFIX, register_error_handlers
from webapp.api.unit import release_connection

__all__ = ["bp"]

bp = Blueprint("api", __name__, url_prefix=API_PREFIX)
bp.before_request(require_token)
bp.teardown_app_request(release_connection)  # app-wide: runs even when routing failed
register_error_handlers(bp)
for _module in (prospects, events, handoffs, sequences, inbound, openapi):
    bp.register_blueprint(_module.bp)
