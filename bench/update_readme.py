"""Paste the benches' markdown tables into bench/README.md, so no measured number is typed.

Each bench writes ``bench/README_<topic>.md``; bench/README.md holds, for each, a block

    <!-- bench/README_<topic>.md -->
    ...replaced by the file's text...
    <!-- end bench/README_<topic>.md -->

    .venv/bin/python bench/update_readme.py          # rewrite bench/README.md
    .venv/bin/python bench/update_readme.py --check  # exit 1 if bench/README.md is behind the tables

`make bench` runs it after the benches.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "bench" / "README.md"
BLOCK = re.compile(r"(<!-- (bench/README_\w+\.md) -->\n)(.*?)(<!-- end \2 -->)", re.S)


def updated(text: str) -> tuple[str, list[str]]:
    """README text with every block refreshed, and the tables it names that are missing."""
    missing = []

    def fill(match: re.Match) -> str:
        table = ROOT / match.group(2)
        if not table.exists():
            missing.append(match.group(2))
            return match.group(0)
        return match.group(1) + table.read_text().rstrip("\n") + "\n" + match.group(4)

    return BLOCK.sub(fill, text), missing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report whether bench/README.md is current")
    args = parser.parse_args()
    text = README.read_text()
    new, missing = updated(text)
    for name in missing:
        print(f"warning: {name} does not exist yet (run its bench)", file=sys.stderr)
    if args.check:
        if new != text:
            print("bench/README.md is behind bench/README_*.md: run `python bench/update_readme.py`")
            return 1
        print("bench/README.md matches the bench tables")
        return 0
    README.write_text(new)
    print(f"bench/README.md: {len(BLOCK.findall(new))} bench table(s) pasted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
