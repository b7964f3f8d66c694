"""Write the published JSON Schemas of scenario and sweep files to schemas/ from the loader's own tables
(sim/json_schemas.py); run it after changing what a scenario or sweep file may hold. The files are committed, and
tests/sim/test_json_schemas.py fails when they differ from what this writes. Run from anywhere:
`.venv/bin/python scripts/write_schemas.py`.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sim.json_schemas import published  # noqa: E402  (the repository is importable only once ROOT is on the path)

OUT = ROOT / "schemas"


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, content in published().items():
        (OUT / name).write_text(content, encoding="utf-8")
        print(OUT / name)


if __name__ == "__main__":
    main()
