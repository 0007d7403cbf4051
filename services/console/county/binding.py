"""The county reads bound to one request: the console's stubs, called with the user's token."""

from __future__ import annotations

from typing import Any

from google.protobuf.message import Message
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection
from xiezuo.assessment.v1 import assessment_pb2_grpc
from xiezuo.collaboration.v1 import collaboration_pb2_grpc
from xiezuo.staffing.v1 import registry_pb2_grpc, staffing_pb2_grpc, training_pb2_grpc

from services.console.county.reads import CountyReads
from services.console.county.views import kpi_parts
from services.console.grpc_calls import call, stubs
from services.console.web import translator

# Which of the console's stubs answers each generated stub class a read names.
STUB_ATTRIBUTES: dict[type, str] = {
    assessment_pb2_grpc.AssessmentServiceStub: "assessment",
    registry_pb2_grpc.RegistryServiceStub: "registry",
    staffing_pb2_grpc.StaffingServiceStub: "staffing",
    training_pb2_grpc.TrainingServiceStub: "training",
    collaboration_pb2_grpc.CollaborationServiceStub: "collaboration",
}
# Refusals a page can leave a part out for: not this user's to read, or not there.
OPTIONAL_STATUSES = frozenset({403, 404})


def optional_failure(error: BaseException) -> bool:
    """Whether a failed read only means the part is not for this user, or does not exist."""
    return isinstance(error, HTTPException) and error.status_code in OPTIONAL_STATUSES


def county_reads(connection: HTTPConnection) -> CountyReads:
    """CountyReads calling the console's stubs as the signed-in user."""
    held = stubs(connection)

    async def bound(stub_class: Any, method: str, message: Message) -> Any:
        stub = getattr(held, STUB_ATTRIBUTES[stub_class])
        return await call(connection, getattr(stub, method), message)

    return CountyReads(bound, optional_failure)


def kpi_labeller(connection: HTTPConnection) -> Any:
    """`kpi_label(kpi)` in the user's language: the KPI's label, with its detail after it."""
    t = translator(connection)

    def kpi_label(kpi: str) -> str:
        base, detail = kpi_parts(kpi)
        key = f"ranking.kpis.{base}"
        label = t(key)
        if label == key:
            label = base
        return f"{label} · {detail}" if detail else label

    return kpi_label
