"""Reads staffing's rule data files (YAML): the county's recusal grounds.

`python -m services.staffing.store.rule_files FILE...` checks grounds files (exit 1 on errors).
"""

from __future__ import annotations

import sys
from pathlib import Path

from services.staffing.domain.recusal_grounds import (
    RecusalGrounds,
    RecusalGroundsInvalid,
    parse_recusal_grounds,
)

RULES_DIR = Path(__file__).resolve().parent.parent / "rules"
DEFAULT_RECUSAL_GROUNDS_FILE = RULES_DIR / "recusal_grounds.yaml"


def load_recusal_grounds(path: Path = DEFAULT_RECUSAL_GROUNDS_FILE) -> RecusalGrounds:
    """The grounds a file declares; RecusalGroundsInvalid names the file and each bad line."""
    try:
        return parse_recusal_grounds(path.read_text(encoding="utf-8"))
    except RecusalGroundsInvalid as invalid:
        raise RecusalGroundsInvalid([f"{path}: {error}" for error in invalid.errors]) from None


def main(paths: list[str]) -> int:
    """0 when every file is valid; 1 listing every error by line otherwise."""
    failed = False
    for path in paths:
        try:
            grounds = load_recusal_grounds(Path(path))
        except (RecusalGroundsInvalid, OSError) as exc:
            failed = True
            for line in getattr(exc, "errors", [str(exc)]):
                print(line, file=sys.stderr)
            continue
        for ground in grounds:
            print(f"{path}: {ground.code}: {ground.label} — {'; '.join(ground.sources)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
