"""``make lint``: no source file over 400 lines, no function over 60 (tests and generated
migrations aside). A long file or function usually holds more than one job; split it by what
the parts do (see docs/CONVENTIONS.md)."""

import ast
import sys
from pathlib import Path

MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 60
ROOTS = ("libs", "services", "tools", "operator", "benchmarks", "scripts")
SKIP_PARTS = {"tests", "migrations", ".venv"}


def too_long(path: Path, repo: Path) -> list[str]:
    text = path.read_text()
    path = path.relative_to(repo)
    found = []
    if (count := len(text.splitlines())) > MAX_FILE_LINES:
        found.append(f"{path}: {count} lines (at most {MAX_FILE_LINES})")
    for node in ast.walk(ast.parse(text, filename=str(path))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                found.append(
                    f"{path}:{node.lineno}: {node.name}() is {length} lines"
                    f" (at most {MAX_FUNCTION_LINES})"
                )
    return found


def main() -> int:
    repo = Path(__file__).resolve().parents[1]
    problems = [
        problem
        for root in ROOTS
        for path in sorted((repo / root).rglob("*.py"))
        if not SKIP_PARTS & set(path.relative_to(repo).parts)
        for problem in too_long(path, repo)
    ]
    print("\n".join(problems) or "sizes: every file and function within limits")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
