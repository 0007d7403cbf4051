"""The case file: history, links, team, the draw and its replay, rectification items, actions.

Every action form is one ActOnCase call with the user's token; the forms offered are the
actions cases names for this user (GetCase.open_actions). A field violation is shown beside
its input, any other refusal above the forms, and a retry of a form (its idempotency key is
made when the page is drawn) never acts twice.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from xiezuo.staffing.v1 import staffing_pb2

from services.console.casework.pagekit import helpers, reads
from services.console.casework.views import (
    FormProblem,
    act_request,
    action_forms,
    errors_by_field,
    form_field,
)
from services.console.grpc_calls import Refused, call, stubs
from services.console.session import signed_in
from services.console.web import render, translator

# Who is offered the form that replaces a drawn team (staffing's policy decides).
OVERRIDERS = ("zone_chief",)
# Form inputs echoed back beside their errors (never an evidence file, never a token).
_ECHOED = (
    "choice",
    "reason",
    "days",
    "description",
    "sha256",
    "decision",
    "sanctions",
    "organisational_measures",
    "meeting_body",
    "meeting_minutes_ref",
    "meeting_members",
    "meeting_present",
    "meeting_votes_for",
    "meeting_votes_against",
)


async def _page(
    request: Request, case_id: str, *, status_code: int = 200, **extra: Any
) -> Response:
    view = await reads(request).case_file(case_id)
    forms = action_forms(list(view.file.open_actions))
    step_id = request.query_params.get("step", "")
    done = next((s for s in view.file.history if str(s.step_id) == step_id), None)
    context: dict[str, Any] = {
        "view": view,
        "forms": forms,
        # A key per form, made now: submitting the same page twice acts once.
        "keys": {form.action: uuid.uuid4().hex for form in forms},
        "done": done,
        "errors": {},
        "values": {},
        "failed_action": "",
        "refusal": "",
        **helpers(request),
        **extra,
    }
    return render(request, "case_file/show.html", context, status_code=status_code)


async def case_file(request: Request) -> Response:
    """One case file as the user may see it (403/404 pages when cases refuses)."""
    signed_in(request)
    return await _page(request, request.path_params["case_id"])


async def act(request: Request) -> Response:
    """Take one step on the file; back to the file showing the step, or the form's errors."""
    signed_in(request)
    case_id = request.path_params["case_id"]
    form = await request.form()
    action = str(form.get("action") or "")
    key = str(form.get("idempotency_key") or "") or uuid.uuid4().hex
    values = {name: str(form.get(name) or "") for name in _ECHOED}
    t = translator(request)
    try:
        act_on_case = act_request(case_id, action, form, key)
        reply = await call(request, stubs(request).cases.ActOnCase, act_on_case)
    except FormProblem as problem:
        return await _page(
            request,
            case_id,
            status_code=400,
            errors={problem.field: [t(f"case_file.form_problem.{problem.reason.split(':')[0]}")]},
            values=values,
            failed_action=action,
        )
    except Refused as refused:
        errors = errors_by_field(
            (path, message) for path, messages in refused.violations.items() for message in messages
        )
        return await _page(
            request,
            case_id,
            status_code=refused.status,
            errors=errors,
            values=values,
            failed_action=action,
            refusal="" if errors else refused.message,
        )
    except HTTPException as denied:
        if denied.status_code != 403:
            raise
        # The user may read the file but not take this step: say so on the file itself (if
        # they may not even read it, the page's own read answers 403 with nothing shown).
        return await _page(request, case_id, status_code=403, refusal=denied.detail)
    target = f"/cases/{quote(case_id, safe='')}?step={reply.step.step_id}#step-done"
    return RedirectResponse(target, status_code=303)


async def _draw_page(
    request: Request, draw_id: str, *, replay: bool, status_code: int = 200, **extra: Any
) -> Response:
    user = signed_in(request)
    view = await reads(request).draw(draw_id, replay=replay)
    context: dict[str, Any] = {
        "view": view,
        # The override form is for zone chiefs; staffing decides whether this one may.
        "may_override": user.has_role(*OVERRIDERS),
        "key": uuid.uuid4().hex,
        "errors": {},
        "values": {},
        "refusal": "",
        **helpers(request),
        **extra,
    }
    return render(request, "case_file/draw.html", context, status_code=status_code)


async def draw(request: Request) -> Response:
    """A recorded draw explained by staffing."""
    return await _draw_page(request, request.path_params["draw_id"], replay=False)


async def replay(request: Request) -> Response:
    """A recorded draw recomputed by staffing from its record, beside its explanation."""
    return await _draw_page(request, request.path_params["draw_id"], replay=True)


async def override(request: Request) -> Response:
    """The zone chief sets the team instead of the draw, with a reason (OverrideDraw)."""
    signed_in(request)
    draw_id = request.path_params["draw_id"]
    form = await request.form()
    members = [m.strip() for m in str(form.get("members") or "").replace("，", ",").split(",")]
    values = {name: str(form.get(name) or "") for name in ("members", "reason")}
    overriding = staffing_pb2.OverrideDrawRequest(
        idempotency_key=str(form.get("idempotency_key") or "") or uuid.uuid4().hex,
        draw_id=draw_id,
        member_person_ids=[m for m in members if m],
        reason=values["reason"].strip(),
    )
    try:
        reply = await call(request, stubs(request).staffing.OverrideDraw, overriding)
    except Refused as refused:
        errors: dict[str, list[str]] = {}
        for path, messages in refused.violations.items():
            name = "members" if path.startswith("member_person_ids") else form_field(path)
            errors.setdefault(name, []).extend(messages)
        return await _draw_page(
            request,
            draw_id,
            replay=False,
            status_code=refused.status,
            errors=errors,
            values=values,
            refusal="" if errors else refused.message,
        )
    return RedirectResponse(f"/draws/{quote(reply.override_id, safe='')}", status_code=303)


ROUTES: list[BaseRoute] = [
    Route("/cases/{case_id}", case_file, name="case_file"),
    Route("/cases/{case_id}/act", act, methods=["POST"], name="case_act"),
    Route("/draws/{draw_id}", draw, name="draw"),
    Route("/draws/{draw_id}/replay", replay, name="draw_replay"),
    Route("/draws/{draw_id}/override", override, methods=["POST"], name="draw_override"),
]
