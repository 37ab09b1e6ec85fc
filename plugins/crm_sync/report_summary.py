"""`python -m crm_sync.report_summary [--latest | REPORT.json]`: print a run report's summary."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from crm_sync.report import summary_lines


def _latest_report() -> Path:
    from crm_sync.staging import staging_base

    base = Path(staging_base().path)
    reports = sorted(base.glob("*/*/report.json"), key=lambda path: path.stat().st_mtime)
    if not reports:
        raise SystemExit(f"no report.json under {base}")
    return reports[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("report", nargs="?", type=Path, help="a report.json (default: --latest)")
    parser.add_argument("--latest", action="store_true", help="the newest report under the staging base")
    args = parser.parse_args(argv)
    path = args.report if args.report and not args.latest else _latest_report()
    report = json.loads(path.read_text())
    print("\n".join(summary_lines(report)))
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
