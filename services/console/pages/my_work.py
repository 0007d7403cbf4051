"""My work: the approvals waiting for the user, their own files, and deadlines at risk."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from services.console.casework.pagekit import helpers, reads
from services.console.session import signed_in
from services.console.web import NavLink, render
from services.runtime.tokens import ALL_ZONES


async def my_work(request: Request) -> Response:
    """The user's inbox, files and deadlines, as cases lists them for the user's token."""
    user = signed_in(request)
    own = [zone for zone in user.zone_ids if zone != ALL_ZONES]
    work = await reads(request).my_work(
        subject=user.subject,
        county_id=user.county_id,
        # Names of the user's own zone's people; county-level users' lists span the county.
        zone_id=own[0] if len(own) == 1 else "",
    )
    return render(request, "my_work/index.html", {"work": work, **helpers(request)})


ROUTES: list[BaseRoute] = [Route("/work", my_work, name="my_work")]
NAV = [NavLink("/work", "my_work.nav", order=10)]
