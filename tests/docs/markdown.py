"""The fenced blocks of README.md and docs/*.md that the documentation tests run or check.

A block may be preceded by a marker line, `<!-- doc-test: MODE [ARGS] -->`, which GitHub does not render:

- no marker on a ```sh block: `run` (each command runs in a scratch directory and must exit 0);
- `setup`: the venv / pip one-liners of the README (test_commands.py says how they are checked);
- `quick ARGS`: `run`, with ARGS appended to every command (the benchmarks, at a small size);
- `background`: long-running commands (`mn-deploy dev up`, `controller run`, `agent worker`) started by the test;
- `live`: commands run against the stack the file's last `background` block started;
- `output COMMAND` on a ```text block: the exact stdout of COMMAND, in the closest ```sh block before it that
  contains COMMAND;
- `scenario` on a ```json block: a scenario document, loaded and run;
- `sweep` on a ```json block: a sweep document whose scenario path is relative to `examples/sweeps/`, loaded.

Within a ```sh block a command may continue over lines ending in a backslash; comment lines are skipped; a command
ending in `# exits N` must exit with N instead of 0. ```python blocks are run as scripts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MARKER = re.compile(r"^<!-- doc-test: (\w+)(?: (.*?))? -->$")
FENCE = re.compile(r"^```(\w*)\s*$")
EXITS = re.compile(r"\s+#\s*exits (\d+)$")
SHELL_MODES = ("run", "setup", "quick", "background", "live")


@dataclass(frozen=True, slots=True)
class Command:
    text: str
    exit_code: int = 0


@dataclass
class Block:
    path: Path
    line: int
    language: str
    mode: str
    args: str
    body: str
    output: Block | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    def commands(self) -> list[Command]:
        """The shell commands, continuation lines joined, with the exit code each must give."""
        commands = []
        pending = ""
        for raw in self.body.splitlines():
            line = pending + raw.strip()
            if line.endswith("\\"):
                pending = line[:-1].rstrip() + " "
                continue
            pending = ""
            if not line or line.startswith("#"):
                continue
            expected = EXITS.search(line)
            if expected:
                commands.append(Command(line[: expected.start()], int(expected.group(1))))
            else:
                commands.append(Command(line))
        return commands


def documents() -> list[Path]:
    """README.md, then docs/*.md in name order."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def blocks(path: Path) -> list[Block]:
    """Every fenced block of one file, in order, with its marker (if any) read; an `output` block is attached to
    the shell block before it."""
    found: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    marker: tuple[str, str] | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        marked = MARKER.match(line.strip())
        fence = FENCE.match(line)
        if marked:
            marker = (marked.group(1), marked.group(2) or "")
        elif fence:
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            language = fence.group(1)
            mode, args = marker or (("run" if language == "sh" else ""), "")
            block = Block(path, i + 1, language, mode, args, "\n".join(lines[i + 1 : end]) + "\n")
            if mode == "output":
                shell = next((b for b in reversed(found) if b.language == "sh" and args and args in b.body), None)
                if shell is None:
                    raise ValueError(f"{block.name}: no sh block before it runs {args!r}")
                shell.output = block
            found.append(block)
            marker = None
            i = end
        elif line.strip():
            marker = None
        i += 1
    return found


def all_blocks() -> list[Block]:
    return [block for path in documents() for block in blocks(path)]
