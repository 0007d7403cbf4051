"""Live notices (`GET /events`): the signed-in user's notices as server-sent events.

The stream carries only what the services let this user read (services/console/live.py) and
only worded facts: the notice's text in the user's language and a link to what it is about.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from services.console.live import (
    CASE,
    LETTER,
    RECTIFICATION,
    Audience,
    LiveFeed,
    Notice,
    ServiceGate,
    Viewer,
    notices_for,
)
from services.console.session import signed_in
from services.console.web import translator

# Where a notice's subject is shown; a rectification item is listed on its case's zone board.
_LINKS: dict[str, Callable[[Notice], str | None]] = {
    CASE: lambda notice: f"/cases/{notice.subject_id}",
    LETTER: lambda notice: f"/letters/{notice.subject_id}",
    RECTIFICATION: lambda notice: None,
}
# Breaches and overdue letters are shown as warnings.
_URGENT = frozenset({"deadline_breached", "letter_overdue", "team_unfillable"})


def wording(t: Callable[..., str]) -> Callable[[Notice], Mapping[str, Any]]:
    """Turns a notice into what the browser shows, in the language of `t`."""

    def worded(notice: Notice) -> Mapping[str, Any]:
        facts = dict(notice.facts)
        for name in ("stage", "to_stage"):
            if name in facts:
                facts[name] = t(f"live.stage.{facts[name]}")
        if "kind" in facts and notice.what.startswith("deadline"):
            facts["kind"] = t(f"live.deadline_kind.{facts['kind']}")
        for name in ("due_at", "due_date"):
            if name in facts:
                facts[name] = facts[name][:10]
        return {
            "id": notice.event_id,
            "what": notice.what,
            "text": t(f"live.notice.{notice.what}", subject=notice.subject_id, **facts),
            "href": _LINKS[notice.subject_kind](notice),
            "tone": "warning" if notice.what in _URGENT else "info",
            "at": notice.occurred_at.isoformat(),
            "at_text": notice.occurred_at.strftime("%Y-%m-%d %H:%M"),
        }

    return worded


async def events(request: Request) -> Response:
    """The event stream of the signed-in user (closed when the browser goes)."""
    user = signed_in(request)
    feed: LiveFeed = request.app.state.live_feed
    channels = request.app.state.channels
    gate = ServiceGate(channels["cases"], channels["collaboration"])
    viewer = Viewer(subject=user.subject, county_id=user.county_id, token=user.token)
    stream = notices_for(
        feed,
        Audience(viewer, gate),
        wording(translator(request)),
        disconnected=request.is_disconnected,
        metrics=feed.metrics,
    )
    return StreamingResponse(
        stream,
        media_type="text/event-stream",
        # No proxy may hold the stream back (nginx honours X-Accel-Buffering).
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


ROUTES: list[BaseRoute] = [Route("/events", events, methods=["GET"], name="live_events")]
