"""When a team's work on a case is over, so that its members' workload is released."""

from __future__ import annotations

from dataclasses import dataclass

from services.staffing.domain.draw_record import Stage

ALL_TEAMS = frozenset(Stage)


@dataclass(frozen=True)
class WorkloadRelease:
    """One version of the rule mapping a case's new stage to the teams whose work it ends."""

    version: str
    # Case stages (cases' workflow) in which no team works any more: a closed, stored,
    # decided or transferred file. An appeal asks for a new review team by a new request.
    at_rest: frozenset[str]
    # Case stages that end one kind of team's work while others continue.
    ends: dict[str, frozenset[Stage]]

    def teams_released(self, to_stage: str) -> frozenset[Stage]:
        """The team stages whose open assignments end when a case enters `to_stage`."""
        if to_stage in self.at_rest:
            return ALL_TEAMS
        return self.ends.get(to_stage, frozenset())


DEFAULT_WORKLOAD_RELEASE = WorkloadRelease(
    version="release-2026.1",
    at_rest=frozenset({"closed", "stored_pending", "decided", "transferred"}),
    # Filing (立案) starts the investigation with a newly drawn team: the verification
    # team's report is done. A hearing's send-back re-enters "investigation" too, when the
    # verification team has long been released, so this never cuts an investigation short.
    ends={"investigation": frozenset({Stage.VERIFICATION})},
)
