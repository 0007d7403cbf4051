"""Every relative link in README.md, CHANGELOG.md and docs/**/*.md resolves to a file in the repo.

Checks Markdown links `[text](target)`, reference definitions `[name]: target` and back-quoted
paths that start with `docs/`, `../` or `./` (how these pages often name files), outside code
fences. Links to the web (`scheme:`) and in-page anchors are not checked. Exit 1 naming every
broken link.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_IMAGE = re.compile(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)>?\s*\)")
_REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.M)
_QUOTED_PATH = re.compile(r"`((?:\.\./|\./|docs/)[^`\s]+)`")
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)


def pages(root: Path = ROOT) -> list[Path]:
    """The Markdown pages a reader of a clone is sent through."""
    found = [root / "README.md", root / "CHANGELOG.md", *sorted((root / "docs").rglob("*.md"))]
    return [page for page in found if page.exists()]


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    """Relative targets in `page` that are not files or directories inside `root`."""
    text = _FENCE.sub("", page.read_text())
    targets = [
        m.group(1) for pattern in (_LINK, _IMAGE, _REFERENCE) for m in pattern.finditer(text)
    ]
    targets += [m.group(1) for m in _QUOTED_PATH.finditer(text)]
    broken: list[str] = []
    for target in targets:
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) or target.startswith("#"):
            continue
        path = target.split("#", 1)[0]
        if not path:
            continue
        # Back-quoted `docs/...` paths are written from the repository root.
        base = (
            root if path.startswith("docs/") and not (page.parent / path).exists() else page.parent
        )
        resolved = (base / path).resolve()
        if not resolved.is_relative_to(root.resolve()) or not resolved.exists():
            broken.append(target)
    return broken


def main() -> int:
    """Print every broken link; exit 1 if there is one."""
    failures = [
        f"{page.relative_to(ROOT)}: {target}" for page in pages() for target in broken_links(page)
    ]
    if failures:
        print("check_links: links that do not resolve to a file in the repo:", file=sys.stderr)
        for line in failures:
            print(f"  {line}", file=sys.stderr)
        return 1
    print(f"check_links: every relative link in {len(pages())} pages resolves")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
