"""`xiezuo training record|list` and `xiezuo attendance record|list` (staffing)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from xiezuo.staffing.v1 import training_pb2, training_pb2_grpc

from services.cli.client import (
    IdempotencyOption,
    JsonOption,
    TimeoutOption,
    TokenOption,
    call,
    choice,
    choices,
    emit,
    enum_label,
    fresh_key,
    next_page,
    print_table,
    stdout_console,
    when,
)

app = typer.Typer(help="Training (业务培训) each person took.", no_args_is_help=True)
attendance_app = typer.Typer(help="Where each person was on a working day.", no_args_is_help=True)
Stub = training_pb2_grpc.TrainingServiceStub
PersonArg = Annotated[str, typer.Argument(help="The person's id")]
PageSizeOption = Annotated[int, typer.Option(help="Rows per page")]
PageTokenOption = Annotated[str, typer.Option(help="Continue from a previous page")]
TYPE_PREFIX, STATUS_PREFIX = "TRAINING_TYPE_", "ATTENDANCE_STATUS_"


def _training_row(record: training_pb2.TrainingRecord) -> tuple[str, ...]:
    return (
        record.record_id,
        record.date,
        record.course,
        enum_label(training_pb2.TrainingType.Name(record.training_type), TYPE_PREFIX),
        f"{record.hours:.1f}",
        record.recorded_by,
    )


TRAINING_COLUMNS = ("record", "date", "course", "type", "hours", "recorded by")


@app.command("record")
def training_record(
    person_id: PersonArg,
    course: Annotated[str, typer.Option(help="Course title")],
    training_type: Annotated[
        str,
        typer.Option(
            "--type",
            help="Kind of training: " + ", ".join(choices(training_pb2.TrainingType, TYPE_PREFIX)),
        ),
    ],
    hours: Annotated[float, typer.Option(help="Hours (more than 0, at most 24, in tenths)")],
    date: Annotated[str, typer.Option(help="Day, YYYY-MM-DD")],
    idempotency_key: IdempotencyOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Record a day of training a person took (counted in assessment)."""
    request = training_pb2.RecordTrainingRequest(
        idempotency_key=fresh_key(idempotency_key),
        person_id=person_id,
        course=course,
        training_type=choice(training_pb2.TrainingType, TYPE_PREFIX, training_type, "--type"),
        hours=hours,
        date=date,
    )
    response = call("staffing", Stub, "RecordTraining", request, token, timeout)
    if as_json:
        emit(response, as_json=True)
    else:
        print_table(f"training of {person_id}", TRAINING_COLUMNS, [_training_row(response.record)])


@app.command("list")
def training_list(
    person_id: PersonArg,
    page_size: PageSizeOption = 50,
    page_token: PageTokenOption = "",
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """A person's training records, oldest first."""
    request = training_pb2.ListTrainingRequest(
        person_id=person_id, page_size=page_size, page_token=page_token
    )
    response = call("staffing", Stub, "ListTraining", request, token, timeout)
    if as_json:
        emit(response, as_json=True)
        return
    print_table(
        f"training of {person_id}", TRAINING_COLUMNS, (_training_row(r) for r in response.records)
    )
    next_page(response.next_page_token)


@attendance_app.command("record")
def attendance_record(
    person_id: PersonArg,
    day: Annotated[str, typer.Option(help="The day, YYYY-MM-DD")],
    status: Annotated[
        str,
        typer.Option(
            help="Where they were: "
            + ", ".join(choices(training_pb2.AttendanceStatus, STATUS_PREFIX))
        ),
    ],
    note: Annotated[str, typer.Option(help="Optional note")] = "",
    idempotency_key: IdempotencyOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Record where a person was on a working day (a later record of the day replaces it)."""
    request = training_pb2.RecordAttendanceRequest(
        idempotency_key=fresh_key(idempotency_key),
        person_id=person_id,
        day=day,
        status=choice(training_pb2.AttendanceStatus, STATUS_PREFIX, status, "--status"),
        note=note,
    )
    response = call("staffing", Stub, "RecordAttendance", request, token, timeout)
    if as_json:
        emit(response, as_json=True)
        return
    recorded = response.attendance
    label = enum_label(training_pb2.AttendanceStatus.Name(recorded.status), STATUS_PREFIX)
    stdout_console().print(f"{escape(person_id)} on {escape(recorded.day)}: {label}")


@attendance_app.command("list")
def attendance_list(
    person_id: PersonArg,
    from_day: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD")] = "",
    to_day: Annotated[str, typer.Option("--to", help="Last day, YYYY-MM-DD")] = "",
    page_size: PageSizeOption = 50,
    page_token: PageTokenOption = "",
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """A person's attendance days, oldest first."""
    request = training_pb2.ListAttendanceRequest(
        person_id=person_id,
        from_day=from_day,
        to_day=to_day,
        page_size=page_size,
        page_token=page_token,
    )
    response = call("staffing", Stub, "ListAttendance", request, token, timeout)
    if as_json:
        emit(response, as_json=True)
        return
    print_table(
        f"attendance of {person_id}",
        ("day", "status", "note", "recorded by", "at"),
        (
            (
                d.day,
                enum_label(training_pb2.AttendanceStatus.Name(d.status), STATUS_PREFIX),
                d.note,
                d.recorded_by,
                when(d.recorded_at),
            )
            for d in response.days
        ),
    )
    next_page(response.next_page_token)
