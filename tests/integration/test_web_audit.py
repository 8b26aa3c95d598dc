"""The audit log: users and tokens managed in the browser, each change logged with who
made it, in the same transaction as the change."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from engine.exceptions import InvalidInputError
from engine.services.audit import list_audit, record_audit
from engine.store import AuditEntry
from tests.support.web import EMAILS, Web


def test_admins_manage_users_and_every_change_is_logged(web: Web):
    admin = web.client("admin")
    created = admin.post(
        "/users/",
        {"email": "Mia@Example.com", "name": "Mia", "role": "marketer", "password": "12345678"},
    )
    assert created.status_code == 302
    page = admin.get("/users/").get_data(as_text=True)
    assert "mia@example.com" in page
    [mia] = [u for u in list_audit(web.uow()) if u.action == "user.created" and "mia" in u.summary]
    user_id = int(mia.subject.split(":")[1])

    assert admin.post(f"/users/{user_id}/password", {"password": "87654321"}).status_code == 302
    assert admin.post(f"/users/{user_id}/active", {"active": "0"}).status_code == 302
    assert web.client().login("mia@example.com", "87654321").status_code == 401
    assert admin.post(f"/users/{user_id}/active", {"active": "1"}).status_code == 302
    assert web.client().login("mia@example.com", "87654321").status_code == 302

    mine = [e for e in list_audit(web.uow()) if e.subject == f"user:{user_id}"]
    assert [e.action for e in mine] == [
        "user.activated",
        "user.deactivated",
        "user.password_set",
        "user.created",
    ]
    assert {e.actor for e in mine} == {EMAILS["admin"]}

    log = admin.get(f"/audit?subject=user:{user_id}").get_data(as_text=True)
    assert "deactivated mia@example.com" in log
    assert "set a new password for mia@example.com" in log
    assert "created token" not in log


def test_a_refused_change_is_shown_and_not_logged(web: Web):
    admin = web.client("admin")
    before = len(list_audit(web.uow()))
    response = admin.post(
        "/users/", {"email": EMAILS["sales"], "name": "", "role": "sales", "password": ""}
    )
    assert response.status_code == 422
    assert "already exists" in response.get_data(as_text=True)
    short = admin.post(
        "/users/", {"email": "x@example.com", "name": "", "role": "marketer", "password": "1"}
    )
    assert "too short" in short.get_data(as_text=True)
    assert len(list_audit(web.uow())) == before


def test_an_admin_cannot_lock_themselves_out(web: Web):
    admin = web.client("admin")
    response = admin.post(f"/users/{web.user_ids['admin']}/active", {"active": "0"})
    assert response.status_code == 302
    assert "cannot deactivate yourself" in admin.get("/users/").get_data(as_text=True)
    assert admin.get("/users/").status_code == 200


def test_api_tokens_are_shown_once_then_only_listed(web: Web):
    admin = web.client("admin")
    created = admin.post("/tokens/", {"name": "hubspot-sync"})
    assert created.status_code == 200
    page = created.get_data(as_text=True)
    [secret] = re.findall(r'<code id="new-token">(nurt_[^<]+)</code>', page)
    assert (
        web.client()
        .get("/api/v1/sequences", headers={"Authorization": f"Bearer {secret}"})
        .status_code
        == 200
    )
    listing = admin.get("/tokens/").get_data(as_text=True)
    assert "hubspot-sync" in listing and secret not in listing

    duplicate = admin.post("/tokens/", {"name": "hubspot-sync"})
    assert duplicate.status_code == 422 and "already named" in duplicate.get_data(as_text=True)

    [entry] = [e for e in list_audit(web.uow()) if e.action == "token.created"]
    token_id = int(entry.subject.split(":")[1])
    assert admin.post(f"/tokens/{token_id}/revoke").status_code == 302
    assert (
        web.client()
        .get("/api/v1/sequences", headers={"Authorization": f"Bearer {secret}"})
        .status_code
        == 401
    )
    actions = [(e.action, e.actor) for e in list_audit(web.uow(), action_prefix="token.")]
    assert actions == [("token.revoked", EMAILS["admin"]), ("token.created", EMAILS["admin"])]
    assert secret not in str([e.details for e in list_audit(web.uow())])


def test_the_audit_page_pages_newest_first(web: Web):
    with web.uow() as uow:
        for i in range(105):
            record_audit(
                uow.session,
                actor="cli",
                action="test.thing",
                subject=f"thing:{i}",
                summary=f"thing number {i}",
                now=web.now(),
            )
        uow.commit()
    admin = web.client("admin")
    first = admin.get("/audit").get_data(as_text=True)
    assert "thing number 104" in first and "thing number 4<" not in first
    older = re.search(r'href="(/audit\?before=\d+[^"]*)"', first)
    assert older is not None
    second = admin.get(older.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert "thing number 4<" in second and "thing number 104" not in second


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_audit_service_refuses_bad_input(uow_factory, now):
    with pytest.raises(InvalidInputError), uow_factory() as uow:
        record_audit(uow.session, actor="", action="x", subject="y", summary="z", now=now)
    with pytest.raises(InvalidInputError):
        list_audit(uow_factory(), limit=0)
    with uow_factory() as uow:
        record_audit(
            uow.session, actor="cli", action="a_b", subject="s", summary="x" * 900, now=now
        )
        record_audit(uow.session, actor="cli", action="axb", subject="s", summary="y", now=now)
        uow.commit()
    assert [e.action for e in list_audit(uow_factory(), action_prefix="a_")] == ["a_b"]
    with uow_factory() as uow:
        [long] = uow.session.scalars(select(AuditEntry).where(AuditEntry.action == "a_b"))
        assert len(long.summary) == 500 and long.summary.endswith("…")
