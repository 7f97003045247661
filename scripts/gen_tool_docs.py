"""Write docs/tools.md from the tool registry: ``python scripts/gen_tool_docs.py [--check]``."""

from __future__ import annotations

import sys
from pathlib import Path

from g4t.tools.docs import render_tools_markdown

DOC = Path(__file__).resolve().parents[1] / "docs" / "tools.md"


def main(argv: list[str]) -> int:
    text = render_tools_markdown()
    if "--check" in argv:
        if not DOC.exists() or DOC.read_text() != text:
            print(f"{DOC} is out of date: run python scripts/gen_tool_docs.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text)
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
