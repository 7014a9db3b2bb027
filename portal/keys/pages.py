"""Pages: the API keys list, creating a key (shown once), deleting one (confirmed)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from portal.deps import StateDep
from portal.exceptions import InvalidRequest, NotFound
from portal.keys import actions
from portal.translatable import N_
from portal.web.responses import csrf_refused, error_page, redirect
from portal.web.visitor import MemberDep, Visitor, VisitorDep

router = APIRouter(include_in_schema=False)
FormText = Annotated[str, Form()]


@router.get("/keys")
async def keys_page(
    request: Request, visitor: VisitorDep, member: MemberDep, state: StateDep, deleted: int = 0
) -> HTMLResponse:
    notice = N_("The key was deleted.") if deleted else None
    return await _keys(state, request, visitor, notice=notice)


@router.post("/keys")
async def create_key(
    request: Request,
    visitor: VisitorDep,
    member: MemberDep,
    state: StateDep,
    csrf_token: FormText = "",
    label: FormText = "",
) -> Response:
    if not visitor.csrf_ok(csrf_token):
        return csrf_refused(state, request, visitor)
    try:
        created = await actions.create_own(state, member, label)
    except InvalidRequest as error:
        return await _keys(state, request, visitor, label_error=error.message, status_code=400)
    page = state.renderer.render(request, visitor, "keys/created.html", {"created": created})
    page.headers["cache-control"] = "no-store"  # the one page that shows a whole key
    return page


@router.get("/keys/{key_id}/delete")
async def confirm_delete(
    key_id: int, request: Request, visitor: VisitorDep, member: MemberDep, state: StateDep
) -> Response:
    try:
        key = await actions.find_own(state, member, key_id)
    except NotFound as error:
        return _no_such_key(state, request, visitor, error)
    return state.renderer.render(request, visitor, "keys/delete.html", {"key": key})


@router.post("/keys/{key_id}/delete")
async def delete_key(
    key_id: int,
    request: Request,
    visitor: VisitorDep,
    member: MemberDep,
    state: StateDep,
    csrf_token: FormText = "",
) -> Response:
    if not visitor.csrf_ok(csrf_token):
        return csrf_refused(state, request, visitor)
    try:
        await actions.delete_own(state, member, key_id)
    except NotFound as error:
        return _no_such_key(state, request, visitor, error)
    return redirect("/keys?deleted=1")


def _no_such_key(
    state: StateDep, request: Request, visitor: Visitor, error: NotFound
) -> HTMLResponse:
    return error_page(
        state,
        request,
        visitor,
        heading=N_("Not found"),
        message=error.message,
        status_code=404,
        back="/keys",
    )


async def _keys(
    state: StateDep,
    request: Request,
    visitor: Visitor,
    *,
    notice: str | None = None,
    label_error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    assert visitor.session is not None
    translate = state.renderer.translator(visitor.language)
    return state.renderer.render(
        request,
        visitor,
        "keys/keys.html",
        {
            "keys": await actions.list_own(state, visitor.session),
            "notice": translate(notice) if notice else None,
            "label_error": translate(label_error) if label_error else None,
        },
        status_code=status_code,
    )
