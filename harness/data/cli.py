"""`harness data prepare SUITE --from PATH|hub` and `harness data verify [SUITE ...]` (argparse glue)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("data", help="prepare / verify the real world's benchmark data (data root: "
                                    "$HARNESS_DATA_DIR, default ~/.cache/harness/data)")
    ds = p.add_subparsers(dest="data_cmd", required=True)
    pr = ds.add_parser("prepare", help="convert a benchmark's official release into the data root",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description=_prepare_help())
    pr.add_argument("suite", help="pope | amber | mmhal | mmvet | object-halbench")
    pr.add_argument("--from", dest="sources", action="append", required=True, metavar="PATH|hub",
                    help="folder (or file) holding the official release; repeat for several folders (e.g. the "
                         "POPE files and COCO val2014); 'hub' = the hub datasets lmms-eval uses (connected machine)")
    pr.add_argument("--subset", action="store_true", help="accept fewer items than the official release")
    pr.add_argument("--root", default=None, help="data root (default: $HARNESS_DATA_DIR or ~/.cache/harness/data)")
    v = ds.add_parser("verify", help="recompute the prepared files' hashes against their manifests")
    v.add_argument("suites", nargs="*", help="default: every prepared real suite")
    v.add_argument("--root", default=None)


def _prepare_help() -> str:
    from harness.data import convert
    return convert.__doc__ or ""


def dispatch(args) -> int:
    from harness import data
    root = Path(args.root).expanduser() if args.root else data.data_root()
    if args.data_cmd == "prepare":
        from harness.data.convert import prepare
        m = prepare(args.suite, args.sources, root, subset=args.subset)
        counts = ", ".join(f"{k} {v}" for k, v in m["counts"].items())
        print(f"{args.suite}: {counts} items, {len(m['files'])} files -> {data.suite_dir(args.suite, root)}"
              + (" (subset)" if m["source"].get("subset") else ""))
        return 0
    suites = args.suites or [s for s in data.SUITE_DOCS if (data.suite_dir(s, root) / data.MANIFEST).is_file()]
    for suite, m in data.check(suites, root, hashes=True).items():
        print(f"{suite}: {len(m['files'])} files match {data.suite_dir(suite, root) / data.MANIFEST}")
    return 0
