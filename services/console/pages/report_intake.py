"""Report intake for officers: a SubmitReport form with the fields each channel asks for.

The receipt code is shown once on the answer page and nowhere else (no redirect that would
carry it in a URL, no caching); a real-name reporter's identity goes to intake only.
"""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from xiezuo.staffing.v1 import registry_pb2

from services.console.casework.intake_form import (
    CADRE_LEVELS,
    CHANNEL_FIELDS,
    REPORTER_FIELDS,
    intake_field,
    report_request,
)
from services.console.casework.pagekit import helpers
from services.console.casework.views import FormProblem
from services.console.grpc_calls import Refused, call, stubs
from services.console.session import signed_in
from services.console.web import NavLink, render, translator

# Who may submit a report (intake decides; the link is shown to them only).
SUBMITTERS = frozenset({"intake_officer", "zone_chief", "deputy_chief", "county_leadership"})
_NO_STORE = {"Cache-Control": "no-store"}


async def _form_page(request: Request, *, status_code: int = 200, **extra: Any) -> Response:
    user = signed_in(request)
    townships = await call(
        request,
        stubs(request).registry.ListTownships,
        registry_pb2.ListTownshipsRequest(county_id=user.county_id, page_size=500),
    )
    context: dict[str, Any] = {
        "channels": CHANNEL_FIELDS,
        "cadre_levels": CADRE_LEVELS,
        "reporter_fields": REPORTER_FIELDS,
        "townships": list(townships.townships),
        "key": uuid.uuid4().hex,
        "values": {},
        "errors": {},
        "refusal": "",
        **helpers(request),
        **extra,
    }
    return render(request, "report_intake/new.html", context, status_code=status_code)


async def new_report(request: Request) -> Response:
    """The empty intake form, with the chosen channel's inputs (htmx asks again on a change)."""
    channel = request.query_params.get("channel", "letter")
    return await _form_page(
        request, values={"channel": channel if channel in CHANNEL_FIELDS else "letter"}
    )


async def submit_report(request: Request) -> Response:
    """Submit the report to intake; the receipt page, or the form with intake's objections."""
    user = signed_in(request)
    form = await request.form()
    key = str(form.get("idempotency_key") or "") or uuid.uuid4().hex
    values = {name: str(value) for name, value in form.items() if name != "csrf_token"}
    t = translator(request)
    try:
        submitted = report_request(form, county_id=user.county_id, idempotency_key=key)
        reply = await call(request, stubs(request).intake.SubmitReport, submitted)
    except FormProblem as problem:
        return await _form_page(
            request,
            status_code=400,
            values=values,
            key=key,
            errors={problem.field: [t(f"report_intake.form_problem.{problem.reason}")]},
        )
    except Refused as refused:
        errors: dict[str, list[str]] = {}
        for path, messages in refused.violations.items():
            errors.setdefault(intake_field(path), []).extend(messages)
        response = await _form_page(
            request,
            status_code=refused.status,
            values=values,
            key=key,
            errors=errors,
            refusal="" if errors else refused.message,
        )
        response.headers.update(_NO_STORE)
        return response
    response = render(request, "report_intake/done.html", {"reply": reply, **helpers(request)})
    response.headers.update(_NO_STORE)
    return response


ROUTES: list[BaseRoute] = [
    Route("/reports/new", new_report, name="report_new"),
    Route("/reports", submit_report, methods=["POST"], name="report_submit"),
]
NAV = [NavLink("/reports/new", "report_intake.nav", SUBMITTERS, order=30)]
