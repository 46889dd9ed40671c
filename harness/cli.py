"""`harness` command line: a thin layer over the Python API (harness.api and friends).

Exit codes: 0 ok; 1 regression found by the gate; 2 bad input, refused before any work (one clear message, no
traceback); 3 the run failed (one message; the traceback is in RUN_DIR/error.log and RUN_DIR/record.json has
status "error", the failing stage and the message; re-running resumes at that stage); 130 interrupted.

Offline: `--offline` or HARNESS_OFFLINE=1 sets HF_HUB_OFFLINE, HF_DATASETS_OFFLINE and TRANSFORMERS_OFFLINE
before anything imports huggingface_hub or datasets (both read them once, at import): a missing model or dataset
then fails at once instead of after minutes of download retries.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from harness.errors import HarnessError, RegressionFound, RunFailed

OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


def _add_run_args(p: argparse.ArgumentParser, sizes: bool = True) -> None:
    p.add_argument("--method", required=True, help="alignment method (see `harness ls`)")
    if sizes:
        p.add_argument("--size", default="5k", help="preference pairs: 2k, 5k, ... or a sweep '2k,5k,7k'")
    p.add_argument("--world", default="micro", choices=["micro", "real"])
    p.add_argument("--out", default=None, help="run directory (default: runs/<method>-<size>-<world>-s<seed>)")
    p.add_argument("--preset", default=None, help="explicit preset YAML instead of presets/<method>/<size>.yaml")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. train.lr=1e-3 seed=1")
    _add_offline(p)


def _add_offline(p: argparse.ArgumentParser) -> None:
    p.add_argument("--offline", action="store_true",
                   help="never contact the Hugging Face hub (also: HARNESS_OFFLINE=1); cached files only")



def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="harness", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("run", help="synthesize -> train -> evaluate base and aligned -> compare")
    _add_run_args(p)
    p.add_argument("--suites", default=None, help="comma-separated suites (default: the world's hallucination suites)")
    p.add_argument("--publish", action="store_true", help="add the finished record to leaderboards/")
    p.add_argument("--dry-run", action="store_true", help="resolve models, data and judge, print the work and a "
                   "GPU-hours estimate, load nothing (harness/dryrun.py)")

    p = sub.add_parser("synth", help="build the preference dataset only")
    _add_run_args(p)
    p = sub.add_parser("train", help="synthesize (cached) and train the adapter only")
    _add_run_args(p)

    p = sub.add_parser("eval", help="evaluate one checkpoint on suites")
    p.add_argument("--model", required=True, help="zoo name (micro-llava) or path to an HF LLaVA checkpoint")
    p.add_argument("--adapter", default=None, help="PEFT adapter directory")
    p.add_argument("--suites", default=None, help="comma-separated suite names (default: --world's suites)")
    p.add_argument("--world", default=None, choices=["micro", "real"],
                   help="the suites' world; with --suites, each must belong to it (default: the suites' own)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--judge", default=None, help="judge for judged suites (rule | openai)")
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N items per task")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--engine", default="hf",
                   help="hf (default) | vllm (a server started in .venv-vllm) | vllm:URL (a running server) | "
                        "vllm-batch (vLLM's offline LLM.generate in a .venv-vllm worker)")
    _add_offline(p)

    p = sub.add_parser("leaderboard", help="regenerate leaderboards/ from committed run records")
    p.add_argument("--dir", default=None, help="leaderboards directory (default: the repo's leaderboards/)")

    p = sub.add_parser("gate", help="fail (exit 1) when gated metrics regress against a reference record")
    p.add_argument("--record", required=True)
    p.add_argument("--reference", required=True)
    p.add_argument("--update", action="store_true", help="write the record as the new reference")

    p = sub.add_parser("publish", help="add a finished run to leaderboards/")
    p.add_argument("run_dir")
    p.add_argument("--dir", default=None)

    sub.add_parser("ls", help="list methods, suites, judges and zoo models (no torch import)")
    from harness.data import cli as data_cli
    data_cli.add_parser(sub)             # data prepare / verify (the real world's benchmark files)
    from harness import readers_cli
    readers_cli.add_parsers(sub)         # compare, rejudge, judge calibrate
    from harness import score
    score.add_parser(sub)                # score saved answers (harness/score.py)

    p = sub.add_parser("zoo", help="build or verify the micro model zoo")
    zs = p.add_subparsers(dest="zoo_cmd", required=True)
    b = zs.add_parser("build", help="train the micro zoo from a seed (deterministic)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--out", default=None, help="zoo directory (default: the committed harness/zoo/weights)")
    b.add_argument("--reduced", action="store_true", help="tiny, fast zoo for tests")
    b.add_argument("--only", default=None, help="comma-separated model names to (re)build")
    v = zs.add_parser("verify", help="check zoo files against their recorded hashes")
    v.add_argument("--dir", default=None)
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--offline" in argv or _truthy(os.environ.get("HARNESS_OFFLINE")):
        go_offline()           # before the parser: building it imports the subcommands' modules
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args) or 0
    except HarnessError as e:
        print(f"harness: error: {e}", file=sys.stderr)
        return e.exit_code
    except RunFailed as e:
        print(f"harness: run failed: {e}" + (f" (traceback: {e.log})" if e.log else ""), file=sys.stderr)
        return e.exit_code
    except RegressionFound as e:
        print(f"harness: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        from harness.io import disk_full, disk_full_path
        full = disk_full_path(e)
        if full is None:
            raise
        print(f"harness: run failed: {disk_full(full or 'the output directory')}", file=sys.stderr)
        return RunFailed.exit_code
    except KeyboardInterrupt:
        print("harness: interrupted; finished stages are cached, re-run to resume", file=sys.stderr)
        return 130


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def go_offline() -> None:
    """Hub-offline for this process and its children. huggingface_hub and datasets read these variables once,
    when imported, so the CLI calls this before any command imports them; a module imported earlier (in-process
    API use) is switched through its constants too."""
    for var in OFFLINE_VARS:
        os.environ[var] = "1"
    if "huggingface_hub" in sys.modules:
        import huggingface_hub.constants as hub_constants
        hub_constants.HF_HUB_OFFLINE = True
    if "datasets" in sys.modules:
        import datasets.config as datasets_config
        datasets_config.HF_HUB_OFFLINE = datasets_config.HF_DATASETS_OFFLINE = True


def _dispatch(args: argparse.Namespace) -> int | None:
    cmd = args.cmd
    from harness import readers_cli
    if cmd in readers_cli.COMMANDS:
        return readers_cli.dispatch(args)
    if cmd == "ls":
        from harness.listing import print_listing
        print_listing()
        return 0
    if cmd == "zoo":
        from harness.zoo import store
        if args.zoo_cmd == "verify":
            store.verify_cli(args.dir)
            return 0
        from harness.zoo.build import build_zoo
        build_zoo(seed=args.seed, out=args.out, reduced=args.reduced,
                  only=args.only.split(",") if args.only else None)
        return 0
    if cmd == "leaderboard":
        from harness.leaderboard import regenerate
        regenerate(args.dir)
        return 0
    if cmd == "gate":
        from harness.gate import gate_cli
        return gate_cli(args.record, args.reference, update=args.update)
    if cmd == "publish":
        from harness.leaderboard import publish
        publish(args.run_dir, args.dir)
        return 0
    if cmd == "data":
        from harness.data import cli as data_cli
        return data_cli.dispatch(args)
    if cmd == "score":
        from harness.score import score_cli
        score_cli(args)
        return 0
    if cmd in ("run", "synth", "train", "eval"):
        _join_ranks()
        from harness.train_progress import quiet_model_loading
        quiet_model_loading()         # no "Loading weights" / map bars under the rich progress (harness/train_progress.py)
    if cmd == "eval":
        from harness.api import eval_suites
        args.suites = eval_suites(args.world, args.suites)
        return _eval(args)
    if cmd == "run" and args.dry_run:
        from harness.dryrun import dry_run_cli
        return dry_run_cli(args)
    from harness import api
    {"run": api.run_cli, "synth": api.synth_cli, "train": api.train_cli}[cmd](args)
    return 0


def _eval(args: argparse.Namespace) -> int:
    """`harness eval`: its input checked first (exit 2), then evaluation failures recorded like a run's (exit 3)."""
    from harness.api import check_model
    from harness.evaluate import evaluate_cli, resolve_suites
    from harness.failures import record_failures
    from harness.io import ensure_writable_dir
    from harness.record import RunRecord
    for flag, value in (("--limit", args.limit), ("--batch-size", args.batch_size)):
        if value is not None and value < 1:
            raise HarnessError(f"{flag} must be a positive number, got {value}")
    suites = resolve_suites(args.suites)
    from harness import data
    data.check([s.name for s in suites])        # the real suites' prepared data, before any model loads
    if args.adapter and not Path(args.adapter).is_dir():
        raise HarnessError(f"adapter directory not found: {args.adapter}")
    check_model(args.model)
    from types import SimpleNamespace

    from harness.api import DEFAULT_JUDGE
    from harness.dryrun import judge_check
    args.judge = args.judge or DEFAULT_JUDGE[suites[0].world]
    judge_check(SimpleNamespace(judge=args.judge), suites)     # an unreachable judge: exit 2 before any model loads
    out = ensure_writable_dir(args.out)
    config = {"model": args.model, "adapter": args.adapter, "suites": [s.name for s in suites],
              "limit": args.limit, "batch_size": args.batch_size}
    with record_failures(out, lambda: RunRecord(kind="eval", world=suites[0].world, config=config)) as at:
        at.stage = "eval"
        evaluate_cli(args)
    return 0


def _join_ranks() -> None:
    """Under torchrun / accelerate launch: join the process group; ranks > 0 print nothing (docs/scaling.md)."""
    import os

    from harness import parallel
    parallel.init()
    if not parallel.is_main():
        os.environ["HARNESS_QUIET"] = "1"


if __name__ == "__main__":
    sys.exit(main())
