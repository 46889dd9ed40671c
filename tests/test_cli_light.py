"""`harness ls`, `harness leaderboard`, `harness publish` and `harness gate` run in a fresh interpreter without
importing torch, transformers or lmms_eval, and return the documented exit codes (0 ok, 1 regression, 2 bad input).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from records_fixtures import make_record, micro_suites, save

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "transformers", "lmms_eval")
PROBE = ("import sys\n"
         "from harness.cli import main\n"
         "rc = main(sys.argv[1:])\n"
         f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
         "print('HEAVY-MODULES:', heavy)\n"
         "sys.exit(rc)\n")


def harness(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    e = dict(os.environ, COLUMNS="200", PYTHONPATH=str(ROOT / "tests"), **(env or {}))
    return subprocess.run([sys.executable, "-c", PROBE, *args], cwd=ROOT, capture_output=True, text=True,
                          env=e, timeout=120)


def light(proc: subprocess.CompletedProcess) -> bool:
    return "HEAVY-MODULES: []" in proc.stdout


def test_ls_lists_everything_without_torch(tmp_path):
    p = harness("ls", env={"HARNESS_ZOO_DIR": str(tmp_path / "no-zoo")})
    assert p.returncode == 0, p.stderr
    assert light(p), p.stdout[-500:]
    for word in ("rm-dpo", "micro-pope", "f1 ↑", "micro-chair", "chair_s ↓", "rule", "openai", "no zoo models"):
        assert word in p.stdout, word


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    suites = micro_suites()
    run = tmp / "run"
    run.mkdir()
    make_record(suites, base_q=0.6, aligned_q=0.85, run_dir=run, n=120)
    worse = save(make_record(suites, base_q=0.6, aligned_q=0.55, n=120, compare=False), tmp / "worse.json")
    return tmp, run, worse


def test_publish_leaderboard_and_gate_without_torch(records):
    tmp, run, worse = records
    lb = tmp / "lb"
    p = harness("publish", str(run), "--dir", str(lb))
    assert p.returncode == 0 and light(p), p.stderr + p.stdout
    p = harness("leaderboard", "--dir", str(lb))
    assert p.returncode == 0 and light(p), p.stderr
    assert "0 file(s) changed" in p.stdout
    assert "micro-pope v2" in (lb / "micro.md").read_text()
    ref = run / "record.json"
    p = harness("gate", "--record", str(ref), "--reference", str(ref))
    assert p.returncode == 0 and light(p), p.stderr
    p = harness("gate", "--record", str(worse), "--reference", str(ref))
    assert p.returncode == 1 and light(p), p.stdout
    assert "REGRESSED" in p.stdout
    p = harness("gate", "--record", str(tmp / "missing.json"), "--reference", str(ref))
    assert p.returncode == 2 and "harness: error:" in p.stderr and "Traceback" not in p.stderr
    p = harness("gate", "--record", str(worse), "--reference", str(tmp / "new-ref.json"), "--update")
    assert p.returncode == 0 and light(p) and (tmp / "new-ref.json").is_file()
