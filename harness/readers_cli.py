"""Subcommands for reading and comparing numbers (issue 18): `harness compare`, `harness rejudge`,
`harness judge calibrate`. Kept apart from harness/cli.py, which only registers and dispatches them."""

from __future__ import annotations

import argparse

COMMANDS = ("compare", "rejudge", "judge")


def _judge_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--judge", required=True, help="judge name (see `harness ls`): rule | openai | ...")
    p.add_argument("--judge-url", default=None, help="OpenAI-compatible base URL (default: $HARNESS_JUDGE_URL)")
    p.add_argument("--judge-model", default=None, help="judge model (default: $HARNESS_JUDGE_MODEL)")


def add_parsers(sub) -> None:
    p = sub.add_parser("compare", help="compare two records metric by metric (B − A), paired where items match")
    p.add_argument("a", help="run directory or record file (A)")
    p.add_argument("b", help="run directory or record file (B)")
    p.add_argument("--checkpoint-a", default=None, help="checkpoint of A (default: aligned, or the only one)")
    p.add_argument("--checkpoint-b", default=None, help="checkpoint of B (default: aligned, or the only one)")
    p.add_argument("--suites", default=None, help="comma-separated suites (default: all shared)")
    p.add_argument("--allow-mismatch", action="store_true",
                   help="compare even when the suite version, data or judge differ (each is printed)")
    p.add_argument("--out", default=None, help="also write the comparison as Markdown here")

    p = sub.add_parser("rejudge", help="re-score a run's saved answers with another judge (no generation)")
    p.add_argument("run_dir")
    _judge_args(p)

    p = sub.add_parser("judge", help="judge tools")
    js = p.add_subparsers(dest="judge_cmd", required=True)
    c = js.add_parser("calibrate", help="score a judge against the micro world's ground truth")
    _judge_args(c)
    c.add_argument("--limit", type=int, default=None, help="only the first N items of each suite")
    c.add_argument("--out", default=None, help="calibration record (default: leaderboards/calibration/<judge>.json)")


def dispatch(args) -> int:
    if args.cmd == "compare":
        from harness.compare_runs import compare_cli
        compare_cli(args)
    elif args.cmd == "rejudge":
        from harness.rejudge import rejudge_cli
        rejudge_cli(args)
    else:
        from harness.calibrate import calibrate_cli
        calibrate_cli(args)
    return 0
