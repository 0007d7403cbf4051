"""`xiezuo assessment ...`: operator commands of the assessment service."""

from __future__ import annotations

import asyncio
import functools
import getpass
from pathlib import Path
from typing import Annotated

import typer

from services.assessment.app import build_rebuild
from services.assessment.domain.quarter import Quarter
from services.assessment.domain.scoring_rules import load_rules
from services.assessment.rebuild import RebuildProgress, Share, run_shares
from services.assessment.report.build import build_report, build_year_report
from services.assessment.report.render import render_csv, render_html
from services.assessment.store.scorecards import Scoring
from services.runtime import audit
from services.runtime.db import Database
from services.runtime.settings import Settings

app = typer.Typer(
    help="Quantitative assessment: reports, catching up after a rebuild.", no_args_is_help=True
)


@app.callback()
def assessment() -> None:
    """Quantitative assessment of zones, townships and staff."""


@app.command("catch-up")
def catch_up(
    batch: Annotated[int, typer.Option(min=1, help="Records per poll and transaction")] = 5_000,
    workers: Annotated[
        int, typer.Option(min=1, help="Processes sharing the partitions (one per core)")
    ] = 1,
) -> None:
    """Apply the consumer group's backlog in big batches, then exit (stop the service first).

    After `xiezuo projection rebuild assessment` the next start would replay the whole log a
    hundred records per transaction; this applies it with bulk statements instead (same rows),
    committing the group's offsets after each batch. With `--workers N`, N processes read and
    map a share of the partitions each, and write one transaction at a time. Start the
    service afterwards.
    """
    progress = asyncio.run(_catch_up(Settings("assessment"), batch, workers))
    typer.echo(
        f"{progress.records} records in {progress.seconds:.1f} s: {progress.applied} applied, "
        f"{progress.duplicates} already applied, {progress.ignored} not assessment's, "
        f"{progress.dead_lettered} dead-lettered"
    )


async def _catch_up(
    settings: Settings, batch: int, workers: int = 1, share: Share | None = None
) -> RebuildProgress:
    rebuild, producer, database = build_rebuild(settings, batch)
    try:
        if workers > 1:
            # The parent deals the shares and truncates the WAL; the workers apply the records.
            return await run_shares(rebuild, workers, functools.partial(_catch_up_share, batch))
        await producer.start()
        return await rebuild.run(share=share)
    finally:
        # Stopped even if never started (the parent of --workers sends no dead letter):
        # aiokafka warns about a producer left unclosed.
        await producer.stop()
        await database.dispose()


def _catch_up_share(batch: int, share: Share) -> RebuildProgress:
    """A worker process's share of `catch-up --workers` (settings from the same environment)."""
    return asyncio.run(_catch_up(Settings("assessment"), batch, share=share))


@app.command()
def report(
    county: Annotated[str, typer.Option(help="County id")],
    quarter: Annotated[str, typer.Option(help="Quarter such as 2026Q3")] = "",
    year: Annotated[int, typer.Option(help="A whole year such as 2026 instead")] = 0,
    zone: Annotated[str, typer.Option(help="Only this zone's units")] = "",
    out: Annotated[Path, typer.Option(help="Directory for report.html and scorecards.csv")] = Path(
        "."
    ),
) -> None:
    """Write the quarter's or year's HTML report (rankings, four forms, deadlines, trends), CSV."""
    if bool(quarter) == bool(year):
        raise typer.BadParameter("give --quarter or --year (one of them)", param_hint="--quarter")
    period: Quarter | int = year
    if quarter:
        try:
            period = Quarter.parse(quarter)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--quarter") from exc
    html, table = asyncio.run(_render(Settings("assessment").database_url, county, period, zone))
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.html").write_text(html, encoding="utf-8")
    (out / "scorecards.csv").write_text(table, encoding="utf-8")
    typer.echo(f"wrote {out / 'report.html'} and {out / 'scorecards.csv'}")


async def _render(url: str, county: str, period: Quarter | int, zone: str) -> tuple[str, str]:
    database = Database(url, audit_key=Settings("assessment").audit_key())
    scoring = Scoring(load_rules())
    try:
        async with database.transaction() as session:
            if isinstance(period, Quarter):
                built = await build_report(
                    session, scoring, county_id=county, quarter=period, zone_id=zone
                )
            else:
                built = await build_year_report(
                    session, scoring, county_id=county, year=period, zone_id=zone
                )
            # The report shows every person's scorecard: exporting it is an audited read.
            await audit.append(
                session,
                county_id=county,
                actor=f"cli:{getpass.getuser()}",
                action="report.exported",
                record_type="assessment_report",
                record_id=f"{period}:{zone or '*'}",
            )
    finally:
        await database.dispose()
    return render_html(built), render_csv(built)
