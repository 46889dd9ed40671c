"""Leaderboards: publish + regenerate from records alone, byte-identical re-generation, world and suite-version
separation, reported-in-paper rows, stale files, bad input."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
from pathlib import Path

import pytest
from records_fixtures import REAL_SUITES, TOY_CHAIR, TOY_POPE_V2, make_eval_record, make_record

from harness.errors import HarnessError
from harness.leaderboard import DEFAULT_DIR, publish, regenerate, run_name

REPO_REPORTED = DEFAULT_DIR / "reported" / "real.yaml"


def tree_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _run(tmp: Path, name: str, **kw) -> Path:
    d = tmp / "runs" / name
    d.mkdir(parents=True)
    make_record(run_dir=d, n=120, **kw)
    return d


@pytest.fixture(scope="module")
def board(tmp_path_factory) -> Path:
    """A leaderboard with micro runs at two sizes and two methods, one real run, and the reported rows."""
    tmp = tmp_path_factory.mktemp("lb")
    root = tmp / "leaderboards"
    (root / "reported").mkdir(parents=True)
    shutil.copy(REPO_REPORTED, root / "reported" / "real.yaml")
    for name, kw in {"a": dict(method="rm-dpo", size=2000, aligned_q=0.75),
                     "b": dict(method="rm-dpo", size=5000, aligned_q=0.85),
                     "c": dict(method="random-pairs", size=5000, aligned_q=0.65)}.items():
        publish(_run(tmp, name, **kw), root)
    publish(_run(tmp, "real", suites=REAL_SUITES, method="rm-dpo", size=9000), root)
    return root


def test_layout_and_samples_summary(board):
    recs = sorted(p.relative_to(board).as_posix() for p in (board / "records").rglob("record.json"))
    assert recs == ["records/micro/random-pairs-5k-s0-random-p/record.json",
                    "records/micro/rm-dpo-2k-s0-rm-dpo20/record.json",
                    "records/micro/rm-dpo-5k-s0-rm-dpo50/record.json",
                    "records/real/rm-dpo-9k-s0-rm-dpo90/record.json"]
    summary = json.loads((board / "records/micro/rm-dpo-5k-s0-rm-dpo50/samples_summary.json").read_text())
    pope = summary["aligned"]["toy-pope"]
    assert pope["rows"] == 120 and len(pope["sha256"]) == 64 and len(pope["examples"]) == 3
    assert pope["splits"] == {"adversarial": 40, "popular": 40, "random": 40}
    assert not list((board / "records").rglob("*.jsonl"))          # the full samples stay in the run dir
    for f in ("README.md", "micro.md", "micro.csv", "real.md", "real.csv", "real-reported.csv",
              "plots/micro/before-after-toy-pope-v1-accuracy.png", "plots/micro/size-toy-pope-v1-accuracy.png",
              "plots/real/before-after-toyreal-pope-v1-accuracy.png"):
        assert (board / f).is_file(), f
    # a method run at one size only gets no size curve of its own, and the real world has no size curve
    assert not list((board / "plots/real").glob("size-*"))


def test_regenerate_twice_changes_no_byte(board):
    before = tree_hashes(board)
    assert regenerate(board) == []
    assert tree_hashes(board) == before
    # deleting every generated file and regenerating gives the same bytes back (no timestamps, no metadata)
    for p in list(board.glob("*.md")) + list(board.glob("*.csv")):
        p.unlink()
    shutil.rmtree(board / "plots")
    regenerate(board)
    assert tree_hashes(board) == before


def test_png_has_no_software_or_date_metadata(board):
    data = (board / "plots/micro/before-after-toy-pope-v1-accuracy.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"matplotlib" not in data and b"Software" not in data and b"Creation" not in data


def test_boards_are_separated_by_world(board):
    micro, real = (board / "micro.md").read_text(), (board / "real.md").read_text()
    assert "toy-pope" in micro and "toyreal" not in micro
    assert "toyreal-pope" in real and "| toy-pope" not in real and "toy-pope v1" not in real
    assert "simulator" in micro
    rows = list(csv.DictReader(io.StringIO((board / "micro.csv").read_text())))
    assert {r["world"] for r in rows} == {"micro"} and {r["suite"] for r in rows} == {"toy-pope", "toy-chair"}
    assert {r["world"] for r in csv.DictReader(io.StringIO((board / "real.csv").read_text()))} == {"real"}


def test_board_content(board):
    micro = (board / "micro.md").read_text()
    # ranked best-first under the declared direction: rm-dpo 5k leads accuracy, random-pairs is last
    section = micro.split("## toy-pope v1 — accuracy ↑")[1].split("## ")[0]
    lines = [ln for ln in section.splitlines() if ln.startswith("| ") and not ln.startswith("| #")]
    assert lines[0].startswith("| 1 ") and "rm-dpo" in lines[0] and "| 5k" in lines[0]
    assert "random-pairs" in lines[-1] and "worse" in lines[-1]
    assert "`harness run --method rm-dpo --size 5k --suites toy-chair,toy-pope`" in section
    assert "2026-11-24" in section and "01234567" in section
    assert "## Metric vs data size" in micro and "plots/micro/size-toy-pope-v1-accuracy.png" in micro
    rows = list(csv.DictReader(io.StringIO((board / "micro.csv").read_text())))
    assert len(rows) == 3 * 7                 # 3 records x every metric of both toy suites (4 + 3)
    acc = [r for r in rows if r["metric"] == "accuracy" and r["run"].startswith("rm-dpo-5k")][0]
    assert acc["primary"] == "1" and acc["test"] == "mcnemar" and float(acc["delta"]) > 0
    assert float(acc["delta_lo"]) <= float(acc["delta"]) <= float(acc["delta_hi"])


def test_real_board_carries_reported_rows_with_sources(board):
    real = (board / "real.md").read_text()
    assert "reported, not measured here" in real.lower()
    assert "not comparable" in real
    for name in ("PDS-DPO", "RLAIF-V", "POVID", "CLIP-DPO", "LLaVA-RLHF", "HA-DPO", "OPA-DPO"):
        assert name in real, name
    assert "arXiv 2412.17417" in real and "89.10" in real          # published digits kept
    measured = real.split("## Reported in papers")[0]
    assert "RLAIF-V" not in measured                                  # never mixed with measured rows
    reported = list(csv.DictReader(io.StringIO((board / "real-reported.csv").read_text())))
    assert reported and all(r["status"] == "reported, not measured here" and r["source"] for r in reported)
    assert "reported" not in (board / "micro.md").read_text().lower().split("micro and real")[0]


def test_suite_versions_never_share_a_column(tmp_path):
    root = tmp_path / "lb"
    publish(_run(tmp_path, "v1", method="rm-dpo", size=5000), root)
    publish(_run(tmp_path, "v2", suites={"toy-pope": TOY_POPE_V2, "toy-chair": TOY_CHAIR}, method="sft",
                 size=5000), root)
    micro = (root / "micro.md").read_text()
    assert "## toy-pope v1 — accuracy" in micro and "## toy-pope v2 — accuracy" in micro
    v1 = micro.split("## toy-pope v1 — accuracy")[1].split("## ")[0]
    v2 = micro.split("## toy-pope v2 — accuracy")[1].split("## ")[0]
    assert "rm-dpo" in v1 and "sft" not in v1 and "sft" in v2 and "rm-dpo" not in v2
    overview = micro.split("## Overview")[1].split("## ")[0]
    assert "toy-pope v1 accuracy ↑" in overview and "toy-pope v2 accuracy ↑" in overview
    assert (root / "plots/micro/before-after-toy-pope-v1-accuracy.png").is_file()
    assert (root / "plots/micro/before-after-toy-pope-v2-accuracy.png").is_file()


def test_republish_replaces_and_stale_plots_go(tmp_path):
    root = tmp_path / "lb"
    d = _run(tmp_path, "x", method="rm-dpo", size=5000)
    publish(d, root)
    publish(d, root)                                   # same run again: same folder, no duplicate row
    assert len(list((root / "records/micro").iterdir())) == 1
    publish(_run(tmp_path, "v2", suites={"toy-pope": TOY_POPE_V2}, method="sft", size=5000), root)
    assert (root / "plots/micro/before-after-toy-pope-v2-accuracy.png").is_file()
    shutil.rmtree(next(p for p in (root / "records/micro").iterdir() if p.name.startswith("sft")))
    regenerate(root)
    assert not (root / "plots/micro/before-after-toy-pope-v2-accuracy.png").exists()
    assert "v2" not in (root / "micro.md").read_text()


def test_eval_record_rows_and_names(tmp_path):
    root = tmp_path / "lb"
    run = tmp_path / "evalrun"
    run.mkdir()
    rec = make_eval_record(model="micro-llava")
    rec.save(run / "record.json")
    publish(run, root)
    assert run_name(rec).startswith("eval-micro-llava-")
    micro = (root / "micro.md").read_text()
    assert "eval: micro-llava" in micro and "harness eval --model micro-llava" in micro


def test_bad_input(tmp_path):
    with pytest.raises(HarnessError, match="not found"):
        publish(tmp_path / "nope", tmp_path / "lb")
    half = tmp_path / "half"
    half.mkdir()
    rec = make_record()
    rec.checkpoints.pop("aligned")
    rec.save(half / "record.json")
    with pytest.raises(HarnessError, match="base and aligned"):
        publish(half, tmp_path / "lb")
    root = tmp_path / "lb2"
    bad = root / "records" / "micro" / "broken"
    bad.mkdir(parents=True)
    (bad / "record.json").write_text("{not json")
    with pytest.raises(HarnessError, match="broken"):
        regenerate(root)
    (bad / "record.json").write_text(json.dumps(make_record(suites=REAL_SUITES).to_dict()))
    with pytest.raises(HarnessError, match="'real'-world record filed under 'micro'"):
        regenerate(root)
    shutil.rmtree(bad)
    (root / "reported").mkdir()
    (root / "reported" / "real.yaml").write_text("tables:\n  - title: x\n    source: y\n    columns: [a, b]\n"
                                                 "    rows:\n      - {row: r, values: [1]}\n")
    with pytest.raises(HarnessError, match="2 values"):
        regenerate(root)


def test_empty_leaderboard_still_has_both_boards(tmp_path):
    regenerate(tmp_path / "lb")
    assert "No measured runs" in (tmp_path / "lb" / "micro.md").read_text()
    assert (tmp_path / "lb" / "real.md").is_file() and (tmp_path / "lb" / "README.md").is_file()
