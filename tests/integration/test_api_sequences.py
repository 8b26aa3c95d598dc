"""``GET /api/v1/sequences`` and ``POST /api/v1/sequences/validate``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.clock import FrozenClock
from engine.services.template_sync import sync_templates
from tests.support.api import ApiHarness, api_harness, error_of
from tests.support.sequences import GENERIC_LOST, PRICE, store

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "sequences" / "lost-on-price.yaml"


@pytest.fixture
def api(database_url: str, now) -> Iterator[ApiHarness]:  # type: ignore[no-untyped-def]
    with api_harness(database_url, FrozenClock(now)) as harness:
        # Sequences are checked against the templates stored in the database.
        sync_templates(harness.uow(), ROOT / "templates", now)
        yield harness


def test_list_shows_each_sequence_with_its_current_version(api: ApiHarness, now) -> None:  # type: ignore[no-untyped-def]
    assert api.get("/sequences").get_json() == {"sequences": []}
    store(api.uow, PRICE, now)
    store(api.uow, PRICE.replace("Budget check-in", "Budget, again"), now)
    store(api.uow, GENERIC_LOST, now)

    response = api.get("/sequences")

    assert response.status_code == 200
    rows = response.get_json()["sequences"]
    assert [(r["key"], r["version"], r["versions"], r["active"]) for r in rows] == [
        ("generic-lost", 1, 1, True),
        ("lost-on-price", 2, 2, True),
    ]
    assert rows[1]["name"] == "Closed-lost: price"


def test_a_shipped_sequence_validates_as_yaml(api: ApiHarness) -> None:
    response = api.post(
        "/sequences/validate", data=SHIPPED.read_text(), content_type="application/x-yaml"
    )

    assert response.status_code == 200
    assert response.get_json() == {
        "valid": True,
        "problems": [],
        "warnings": [],
        "key": "lost-on-price",
        "name": "Closed-lost: price",
    }


@pytest.mark.parametrize("content_type", ["text/yaml", "text/plain; charset=utf-8"])
def test_problems_come_back_with_their_lines(api: ApiHarness, content_type: str) -> None:
    lines = SHIPPED.read_text().splitlines()
    goto = next(i for i, line in enumerate(lines) if "goto: case-study" in line)
    lines[goto] = lines[goto].replace("case-study", "case-stuy")

    response = api.post("/sequences/validate", data="\n".join(lines), content_type=content_type)

    assert response.status_code == 200
    body = response.get_json()
    assert body["valid"] is False
    [problem] = [p for p in body["problems"] if "case-stuy" in p["message"]]
    assert problem["line"] == goto + 1
    assert "did you mean 'case-study'" in problem["message"]


def test_unknown_templates_are_checked_against_the_template_directory(api: ApiHarness) -> None:
    source = SHIPPED.read_text().replace("price/case-study", "price/case-studdy")

    body = api.post("/sequences/validate", json={"source": source}).get_json()

    assert body["valid"] is False
    assert any("price/case-studdy" in p["message"] for p in body["problems"])


def test_broken_yaml_is_an_answer_not_an_error(api: ApiHarness) -> None:
    body = api.post(
        "/sequences/validate", data="key: [unclosed\n", content_type="text/yaml"
    ).get_json()

    assert body["valid"] is False
    [problem] = body["problems"]
    assert problem["message"].startswith("YAML syntax error")
    assert isinstance(problem["line"], int)  # where the parser noticed (the end of input)


def test_validate_refuses_other_content_types_and_bad_json_bodies(api: ApiHarness) -> None:
    form = api.post("/sequences/validate", data={"source": "key: x"})
    assert form.status_code == 415
    assert error_of(form)["code"] == "unsupported_media_type"

    wrong_key = api.post("/sequences/validate", json={"yaml": "key: x"})
    assert wrong_key.status_code == 422
    fields = {p["field"] for p in error_of(wrong_key)["problems"]}
    assert fields == {"source", "yaml"}

    not_utf8 = api.post("/sequences/validate", data=b"key: \xff\xfe", content_type="text/yaml")
    assert not_utf8.status_code == 400


def test_template_mistakes_in_a_subject_come_back_at_their_line(api: ApiHarness) -> None:
    # issue #7 item 9: the same checks as `nurture sequences validate`, through the API.
    lines = SHIPPED.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip().startswith("subject:"))
    lines[at] = '    subject: "{{ FirstName }}, {{ prospect.compnay }} *|FNAME|*"'

    body = api.post("/sequences/validate", json={"source": "\n".join(lines)}).get_json()

    assert body["valid"] is False
    [problem] = body["problems"]
    assert problem["line"] == at + 1
    assert "unknown variable 'FirstName' (did you mean 'prospect.first_name'?" in problem["message"]
