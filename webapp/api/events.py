"""``POST /events``: one event, or a batch of up to ``MAX_BATCH`` under ``{"events": [...]}``.

A batch is recorded in one transaction with a savepoint per event (one commit, not one per
event: the commit's disk wait dominates ingest), so one bad
item (an unknown type, a prospect that does not exist, a message that is not the prospect's,
a key reused for another event) is reported with its index and the valid ones are kept: a
webhook relay should not have to split a batch to find the culprit. Retrying a whole batch
is safe when its events carry idempotency keys, which are scoped to the API token.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from engine.exceptions import ConflictError, InvalidInputError, NotFoundError, NurtureError
from engine.services.events import RecordResult, record_event, record_events
from engine.services.schemas import EventInput
from webapp.api.auth import current_token
from webapp.api.errors import ApiError, error_body, problem_list
from webapp.api.payloads import json_body, validate
from webapp.api.unit import request_uow
from webapp.extensions import get_runtime

__all__ = ["IDEMPOTENCY_HEADER", "MAX_BATCH", "bp"]

bp = Blueprint("events", __name__)

MAX_BATCH = 1_000
IDEMPOTENCY_HEADER = "Idempotency-Key"


@bp.post("/events")
def post_events() -> ResponseReturnValue:
    body = json_body()
    if isinstance(body, dict) and "events" in body:
        return _batch(body)
    return _single(body)


def _single(body: Any) -> ResponseReturnValue:
    # An empty header is a key that breaks the rules (too short), not an absent one.
    header_key = request.headers.get(IDEMPOTENCY_HEADER)
    if header_key is not None and isinstance(body, dict):
        given = body.get("idempotency_key")
        if given is not None and given != header_key:
            raise ApiError(
                422,
                "invalid_input",
                f"the {IDEMPOTENCY_HEADER} header and the body's idempotency_key differ; "
                "send one of them",
                problems=[{"field": "idempotency_key", "message": "differs from the header"}],
            )
        body = {**body, "idempotency_key": header_key}
    data = validate(EventInput, body)
    now = get_runtime().clock.now()
    result = record_event(request_uow(), data, now, api_token_id=current_token().id)
    return jsonify(_result_json(result)), 200 if result.duplicate else 201


def _result_json(result: RecordResult) -> dict[str, Any]:
    """``handoff_id`` is set when this very event handed the prospect back to sales."""
    return {
        "event_id": result.event_id,
        "duplicate": result.duplicate,
        "handoff_id": result.handoff_id,
    }


def _batch(body: dict[str, Any]) -> ResponseReturnValue:
    events = body["events"]
    extra = sorted(set(body) - {"events"})
    if extra:
        raise _batch_shape_error(f"unexpected key(s) next to 'events': {', '.join(extra)}")
    if not isinstance(events, list) or not events:
        raise _batch_shape_error("'events' must be a non-empty list of event objects")
    if len(events) > MAX_BATCH:
        raise _batch_shape_error(
            f"{len(events)} events in one batch; send at most {MAX_BATCH} per request"
        )
    if IDEMPOTENCY_HEADER in request.headers:
        raise _batch_shape_error(
            f"the {IDEMPOTENCY_HEADER} header applies to a single event; "
            "give each event of a batch its own idempotency_key"
        )
    results = _record_batch(events)
    failed = sum(1 for r in results if "error" in r)
    counts = {
        "recorded": sum(1 for r in results if r.get("duplicate") is False),
        "duplicates": sum(1 for r in results if r.get("duplicate") is True),
        "failed": failed,
    }
    if failed == len(results):
        reply = error_body("invalid_batch", "no event of the batch was recorded; see results")
        return jsonify({**reply, **counts, "results": results}), 422
    return jsonify({**counts, "results": results}), 207 if failed else 200


def _record_batch(items: list[Any]) -> list[dict[str, Any]]:
    """Validate every item, then record the valid ones in one transaction (a savepoint
    each); every error stays in its own item's result."""
    results: dict[int, dict[str, Any]] = {}
    valid: list[tuple[int, EventInput]] = []
    for index, item in enumerate(items):
        try:
            valid.append((index, validate(EventInput, item)))
        except InvalidInputError as exc:
            results[index] = {"index": index, **_outcome_json(exc)}
    runtime = get_runtime()
    recorded = record_events(
        runtime.uow(),
        [data for _, data in valid],
        runtime.clock.now(),
        api_token_id=current_token().id,
    )
    for (index, _), outcome in zip(valid, recorded, strict=True):
        results[index] = {"index": index, **_outcome_json(outcome)}
    return [results[i] for i in range(len(items))]


def _outcome_json(outcome: RecordResult | NurtureError) -> dict[str, Any]:
    if isinstance(outcome, RecordResult):
        return _result_json(outcome)
    if isinstance(outcome, NotFoundError):
        return error_body("not_found", str(outcome))
    if isinstance(outcome, ConflictError):
        return error_body("conflict", str(outcome))
    if isinstance(outcome, InvalidInputError):
        return error_body("invalid_input", str(outcome), problem_list(outcome))
    message = str(outcome)
    return error_body("invalid_input", message, [{"field": None, "message": message}])


def _batch_shape_error(message: str) -> ApiError:
    return ApiError(
        422, "invalid_input", message, problems=[{"field": "events", "message": message}]
    )
