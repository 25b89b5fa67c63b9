"""``python -m fgff_core.reproduce``: write the tables from a run log as it stands; trains nothing.

For a log that a running ``python -m fgff_core reproduce`` (same flags) is still filling: the cells
without runs read "not run yet". Trains nothing, so it is safe beside that process.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from . import BUDGETS, PARTS, reproduce
from .pruning import add_pruning_flags, pruning_values
from .report import refresh_includes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fgff_core.reproduce", description=__doc__.splitlines()[0])
    parser.add_argument("--table", default="all", choices=[*PARTS, "all"])
    parser.add_argument("--budget", default="quick", choices=[b for b in BUDGETS if b != "smoke"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--data-dir", metavar="DIR")
    parser.add_argument("--out", type=Path, default=Path("docs/reproduction"), metavar="DIR")
    parser.add_argument("--doc", type=Path, metavar="FILE",
                        help="then refresh the <!-- include PATH --> blocks of this Markdown file")
    add_pruning_flags(parser)
    args = parser.parse_args(argv)
    parts = list(PARTS) if args.table == "all" else [args.table]
    reproduce(parts, args.budget, args.seeds, args.data_dir, args.out, "cpu", say=lambda _msg: None, train=False,
              ablation=pruning_values(args))
    if args.doc is not None:
        print(f"{args.doc}: {refresh_includes(args.doc)} included tables refreshed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
