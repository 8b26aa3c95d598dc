"""The OpenAPI document describes exactly the routes the app serves, with the real schemas."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from engine.config import Settings
from engine.services.schemas import EventInput, ProspectInput
from engine.store import upgrade
from webapp import create_app
from webapp.extensions import get_runtime

API = "/api/v1"
HTTP_METHODS = {"get", "put", "post", "delete", "patch"}


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    url = f"sqlite:///{tmp_path / 'openapi.sqlite3'}"
    upgrade(url)
    app = create_app(Settings().with_overrides(database_url=url, redis_url=None, secret_key="t"))
    yield app
    get_runtime(app).close()


@pytest.fixture
def document(app: Flask) -> dict[str, Any]:
    response = app.test_client().get(API + "/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.get_json()
    return body


def served_operations(app: Flask) -> set[tuple[str, str]]:
    """(path as OpenAPI writes it, method) for every rule under /api/v1."""
    operations = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(API + "/"):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule.removeprefix(API))
        for method in rule.methods or ():
            if method.lower() in HTTP_METHODS:
                operations.add((path, method.lower()))
    return operations


def documented_operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def test_every_served_route_is_documented_and_every_documented_route_is_served(
    app: Flask, document: dict[str, Any]
) -> None:
    served = served_operations(app)
    documented = documented_operations(document)

    assert served - documented == set(), "routes missing from openapi.json"
    assert documented - served == set(), "openapi.json describes routes that do not exist"
    # Not vacuous: the routes of DESIGN.md's public interface are among them.
    assert {
        ("/prospects", "post"),
        ("/prospects/{prospect_id}", "get"),
        ("/prospects/{prospect_id}/erase", "post"),
        ("/prospects/{prospect_id}/export", "get"),
        ("/events", "post"),
        ("/handoffs", "get"),
        ("/handoffs/{handoff_id}/accept", "post"),
        ("/handoffs/{handoff_id}/reject", "post"),
        ("/sequences", "get"),
        ("/sequences/validate", "post"),
        ("/openapi.json", "get"),
    } <= served


def test_it_is_openapi_3_1_with_bearer_auth_everywhere_but_itself(
    document: dict[str, Any],
) -> None:
    assert document["openapi"] == "3.1.0"
    assert document["servers"] == [{"url": API}]
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token from `nurture tokens create NAME`.",
    }
    assert document["security"] == [{"bearerAuth": []}]
    assert document["paths"]["/openapi.json"]["get"]["security"] == []
    # ESP webhooks can only put the token in their URL: the inbound routes take it as a
    # Basic password too, and say so; every other route keeps to the bearer scheme.
    inbound = {("/inbound", "post"), ("/inbound/mime", "post")}
    assert document["components"]["securitySchemes"]["basicAuth"]["scheme"] == "basic"
    for path, method in documented_operations(document) - {("/openapi.json", "get")}:
        operation = document["paths"][path][method]
        if (path, method) in inbound:
            assert operation["security"] == [{"bearerAuth": []}, {"basicAuth": []}]
        else:
            assert "security" not in operation, f"{method} {path} overrides the bearer scheme"
        assert "401" in operation["responses"], f"{method} {path} does not document 401"


def test_request_schemas_are_the_pydantic_models(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]

    assert schemas["ProspectInput"] == ProspectInput.model_json_schema()
    assert schemas["EventInput"] == EventInput.model_json_schema()
    assert schemas["RejectInput"]["properties"]["reason"]["enum"] == [
        "not_ready",
        "wrong_person",
        "no_budget",
        "bad_data",
        "unreachable",
        "other",
    ]
    upsert = document["paths"]["/prospects"]["post"]["requestBody"]
    assert upsert["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ProspectInput"
    }


def test_every_reference_resolves_and_every_operation_is_described(
    document: dict[str, Any],
) -> None:
    schemas = document["components"]["schemas"]

    def refs(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref":
                    yield value
                else:
                    yield from refs(value)
        elif isinstance(node, list):
            for item in node:
                yield from refs(item)

    for ref in refs(document):
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.removeprefix("#/components/schemas/") in schemas, f"dangling {ref}"
    operation_ids = []
    for path, method in documented_operations(document):
        operation = document["paths"][path][method]
        assert operation["summary"] and operation["responses"], (method, path)
        operation_ids.append(operation["operationId"])
    assert len(operation_ids) == len(set(operation_ids))
