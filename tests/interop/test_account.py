"""Account page (approved apps, revoke) and logout, driven like a browser. Users: niaj, olivia."""

from __future__ import annotations

from helpers import (
    CLIENT_DISPLAY_NAME,
    Browser,
    authorize_as,
    authorize_url,
    describe,
    find_form,
    parse_forms,
)


def test_account_lists_and_revokes_approval(origin):
    b = Browser(origin)
    first = authorize_as(b, authorize_url(origin, state="1"), "niaj", expect_consent=True)
    assert first.code

    page = b.get("/account")
    assert page.status_code == 200, describe(page)
    assert "Niaj" in page.text, describe(page, 4000)
    assert CLIENT_DISPLAY_NAME in page.text, describe(page, 4000)
    form = find_form(page, "/account/revoke")
    hidden = dict(form.hidden)
    assert hidden.get("client_id") and hidden.get("csrf"), form

    # Already approved: straight to the callback, no consent page.
    again = authorize_as(b, authorize_url(origin, state="2"), "niaj", expect_consent=False)
    assert again.params["state"] == "2"

    resp = b.submit(page, form)
    assert resp.status_code in (200, 302, 303), describe(resp)
    page = b.get("/account")
    assert page.status_code == 200, describe(page)
    remaining = [f for f in parse_forms(page.text) if f.action.endswith("/account/revoke")]
    assert all(dict(f.hidden).get("client_id") != hidden["client_id"] for f in remaining), describe(page, 4000)

    # After revocation the consent page comes back.
    third = authorize_as(b, authorize_url(origin, state="3"), "niaj", expect_consent=True)
    assert third.params["state"] == "3"


def test_account_revoke_without_csrf_is_rejected(origin):
    b = Browser(origin)
    authorize_as(b, authorize_url(origin, state="1"), "olivia")
    page = b.get("/account")
    form = find_form(page, "/account/revoke")
    data = [(k, v) for k, v in form.hidden if k != "csrf"]
    resp = b.post("/account/revoke", data=data)
    assert resp.status_code in (400, 403), describe(resp)
    authorize_as(b, authorize_url(origin, state="2"), "olivia", expect_consent=False)


def test_logout(origin):
    b = Browser(origin)
    b.login("olivia")
    assert b.get("/account").status_code == 200
    page = b.get("/logout")
    assert page.status_code == 200, describe(page)
    form = find_form(page, "/logout")
    assert "csrf" in dict(form.hidden), form
    resp = b.submit(page, form)
    assert resp.status_code in (200, 302, 303), describe(resp)
    # Signed out: authorize sends us to the login page again.
    resp = b.get(authorize_url(origin, state="x"))
    assert resp.status_code == 303 and resp.headers["Location"].startswith("/login"), describe(resp)
