"""What the casework page modules share: the reads bound to a request, and template helpers."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request

from services.console.casework.reads import CaseworkReads
from services.console.casework.views import detail_text, when
from services.console.grpc_calls import Refused, call, stubs
from services.console.session import signed_in
from services.console.web import translator

QUARTER = re.compile(r"^\d{4}Q[1-4]$")


def reads(request: Request) -> CaseworkReads:
    """The casework reads, made with the signed-in user's token.

    A part of a page the user may not read, or whose service does not answer (a 403, 404 or
    503 of that call alone), is left out rather than failing the whole page.
    """
    user = signed_in(request)
    bound: Callable[[Callable[..., Awaitable[Any]], Any], Awaitable[Any]] = partial(call, request)
    return CaseworkReads(
        stubs(request), bound, (HTTPException, Refused), me=(user.subject, user.name)
    )


def helpers(request: Request) -> dict[str, Any]:
    """Template helpers: `when(ts)`, `term(prefix, value)` and `detail_text(step)`."""
    t = translator(request)

    def term(prefix: str, value: str) -> str:
        """A rule-set word (stage, action, role...) in the user's language, else as it is."""
        if not value:
            return "—"
        key = f"{prefix}.{value}"
        text = t(key)
        return value if text == key else str(text)

    return {"when": when, "term": term, "detail_text": detail_text}
