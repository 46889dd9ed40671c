"""The readers' tools (issue 18): power (minimum detectable effect), `harness compare`, `harness rejudge`,
`harness judge calibrate`, the HTML board, the training progress. Fast tier unless marked slow."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import ttest_rel

from harness import stats

# ---------------------------------------------------------------- power

def _rejection_rate(n_sims: int, simulate, test) -> float:
    return float(np.mean([test(*simulate(i)) < 0.05 for i in range(n_sims)]))


def test_paired_t_mde_has_80_percent_power_in_simulation():
    """Items whose paired differences have SD 1.3: a true mean shift of exactly the MDE is detected by the paired
    t-test in ~80 % of simulated studies, and half of it in far fewer."""
    n, sd = 120, 1.3
    mde = stats.mde_paired_t(sd, n)
    assert 2.8 * sd / np.sqrt(n) < mde < 2.95 * sd / np.sqrt(n)      # the normal approximation, a little above

    def sim(shift):
        def one(i):
            rng = np.random.default_rng(i)
            base = rng.normal(3.0, 1.0, n)
            return base, base + shift + rng.normal(0, sd, n)
        return one

    test = lambda b, a: ttest_rel(a, b).pvalue
    assert _rejection_rate(1000, sim(mde), test) == pytest.approx(0.80, abs=0.04)
    assert _rejection_rate(500, sim(mde / 2), test) < 0.4


def test_mcnemar_mde_has_80_percent_power_in_simulation():
    """Paired yes/no correctness with 12 % discordant items: a difference of the MDE is found by our exact
    McNemar test in ~80 % of simulated studies (the exact test is a little conservative: tolerance 0.05)."""
    n, disc = 400, 0.12
    mde = stats.mde_mcnemar(disc, n)

    def sim(i):
        rng = np.random.default_rng(i)
        u = rng.random(n)
        base_only = (disc - mde) / 2                      # the rest of the discordant share: aligned only right
        base = (u < base_only) | (u >= disc)              # concordant items are right for both
        aligned = (u >= base_only) & (u < disc) | (u >= disc)
        return base, aligned

    rate = _rejection_rate(1500, sim, stats.mcnemar)
    assert rate == pytest.approx(0.80, abs=0.05), (mde, rate)
    assert stats.mde_mcnemar(0.0, n) > 0            # no discordant item seen is not "everything is detectable"


def test_metric_mde_uses_per_item_differences_and_discordance():
    rng = np.random.default_rng(0)
    base = [{"id": i, "score": float(rng.integers(0, 7)), "ok": bool(rng.random() < 0.7)} for i in range(200)]
    aligned = [{**r, "score": min(6.0, r["score"] + float(rng.integers(-1, 2))),
                "ok": r["ok"] if rng.random() < 0.9 else not r["ok"]} for r in base]
    mean = lambda rows: float(np.mean([r["score"] for r in rows]))
    d = np.array([a["score"] - b["score"] for a, b in zip(aligned, base)])
    assert stats.metric_mde(base, aligned, mean) == pytest.approx(stats.mde_paired_t(d.std(ddof=1), 200))
    disc = np.mean([a["ok"] != b["ok"] for a, b in zip(aligned, base)])
    share = lambda rows: float(np.mean([r["ok"] for r in rows]))
    assert stats.metric_mde(base, aligned, share, item_key="ok") == pytest.approx(stats.mde_mcnemar(disc, 200))
    # the jackknife pseudo-values of a mean are the items' own values
    assert np.allclose(stats.jackknife_values(base, mean), [r["score"] for r in base])


# ---------------------------------------------------------------- a run directory with judged samples, a fake judge

import json

from fake_openai import FakeOpenAI, chat_reply

from harness.errors import HarnessError

SUITES = {"micro-mmhal": "mmhal", "micro-mmvet": "mmvet"}
N_ITEMS = 12


def _rows(task: str, variant: str, limit: int = N_ITEMS) -> list[dict]:
    """Samples rows of one checkpoint whose every answer is the calibration set's `variant` answer."""
    from harness.calibrate import calibration_rows
    return [{**r, "id": r["id"].split(":")[0]} for r in calibration_rows(task, limit) if r["variant"] == variant]


def make_run(run_dir, base_variant="hallucinated", aligned_variant="correct", limit=N_ITEMS):
    """A finished run (record.json + samples) on the two judged micro suites, scored by the rule judge."""
    from harness.compare import compare_suite
    from harness.evaluate import suite_result
    from harness.io import read_jsonl, write_jsonl
    from harness.judges.rule import RuleJudge
    from harness.record import RunRecord
    from harness.registry import load

    rec = RunRecord(kind="run", method="toy", size=10, world="micro", config={"run": {"judge": "rule"}})
    for ck, variant in (("base", base_variant), ("aligned", aligned_variant)):
        for name, task in SUITES.items():
            rows = _rows(task, variant, limit)
            assert RuleJudge().judge_rows(task, rows) == 0
            rel = f"samples/{ck}/{name}.jsonl"
            write_jsonl(run_dir / rel, rows)
            rec.checkpoints.setdefault(ck, {})[name] = suite_result(load("suites", name), rows, rel)
    for name in SUITES:
        b, a = (read_jsonl(run_dir / f"samples/{ck}/{name}.jsonl") for ck in ("base", "aligned"))
        rec.comparisons[name] = compare_suite(load("suites", name), b, a)
    rec.save(run_dir / "record.json")
    return rec


def _fast_stats(mp) -> None:
    """100 bootstrap resamples / permutations instead of 1,000 (the numbers the tests check do not depend on them)."""
    import harness.compare
    for module, name in ((stats, "bootstrap_ci"), (harness.compare, "paired_bootstrap"),
                         (stats, "unpaired_bootstrap_permutation")):
        orig = getattr(module, name)
        mp.setattr(module, name, lambda *a, _orig=orig, **k: _orig(*a, **{**k, "n_boot": 100}))


@pytest.fixture
def fast_stats(monkeypatch):
    _fast_stats(monkeypatch)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Finished runs, built once: aligned answers hallucinated / correct / correct on half the items."""
    import shutil
    root = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as mp:
        _fast_stats(mp)
        made = {"hallucinated": make_run(root / "hallucinated", aligned_variant="hallucinated"),
                "correct": make_run(root / "correct", aligned_variant="correct"),
                "half": make_run(root / "half", aligned_variant="correct", limit=N_ITEMS // 2)}

    def copy(name, dest):
        shutil.copytree(root / name, dest)
        return dest, made[name]
    return copy


def _set_data(run_dir, value: str) -> None:
    """Mark every suite result of a saved record as computed from the data manifest `value`."""
    path = run_dir / "record.json"
    d = json.loads(path.read_text())
    for suites in d["checkpoints"].values():
        for res in suites.values():
            res["data"] = value
    path.write_text(json.dumps(d))


def _truth_table(limit: int) -> dict:
    """(task, judge-visible fields) -> the rule judge's score, for every calibration answer."""
    from harness.calibrate import calibration_rows
    from harness.judges.rule import RuleJudge

    table = {}
    for task in ("mmhal", "mmvet"):
        rows = calibration_rows(task, limit)
        RuleJudge().judge_rows(task, rows)
        for r in rows:
            key = _key(task, r["question"], r["target"], r["prediction"],
                       ", ".join(sorted(o["cls"] for o in r["scene"]["objects"])))
            assert table.get(key, r["score"]) == r["score"], "two answers a judge cannot tell apart"
            table[key] = r["score"]
    return table


def _key(task, question, target, prediction, contents):
    return (task, question, target, prediction, contents if task == "mmhal" else "")


def _field(prompt: str, label: str) -> str:
    line = next(x for x in prompt.splitlines() if x.startswith(label))
    return line[len(label):].strip()


class BiasedJudgeServer:
    """An OpenAI-compatible endpoint that knows the truth and answers with a known error: MMHal rating truth + 1
    (at most 6), MM-Vet the truth rounded to 0.1; answers to the prompts in `fail_on` (a prediction text) are
    unparseable (counted failures). Usage (tokens) reported like OpenAI's."""

    def __init__(self, truth: dict, fail_on: set[str] = frozenset()):
        self.truth, self.fail_on, self.requests = truth, fail_on, 0

        def answer(path, headers, body):
            self.requests += 1
            return chat_reply(self.reply(body["messages"][0]["content"]),
                              usage={"prompt_tokens": 100, "completion_tokens": 5})
        self.server = FakeOpenAI(answer)
        self.url = self.server.url

    def reply(self, prompt: str) -> str:
        if "Rating:" in prompt:
            pred = _field(prompt, "Assistant's answer:")
            key = _key("mmhal", _field(prompt, "Question:"), _field(prompt, "Reference answer:"), pred,
                       _field(prompt, "Image contents:"))
            return "I am not sure." if pred in self.fail_on else f"Rating: {min(6, int(self.truth[key]) + 1)}"
        pred = _field(prompt, "Model answer:")
        key = _key("mmvet", _field(prompt, "Question:"), _field(prompt, "Ground truth:"), pred, "")
        return "about half" if pred in self.fail_on else f"{round(self.truth[key], 1):.1f}"

    def close(self):
        self.server.close()


@pytest.fixture
def biased_server(tmp_path):
    servers = []

    def start(limit, fail_on=frozenset()):
        s = BiasedJudgeServer(_truth_table(limit), fail_on)
        servers.append(s)
        return s
    yield start
    for s in servers:
        s.close()


def _judge(server, tmp_path):
    from harness.judges.openai_judge import OpenAIJudge
    # the fake server reads the harness's own prompt wording (the default is the benchmarks' own templates)
    return OpenAIJudge(base_url=server.url, model="biased", cache_dir=tmp_path / "judge-cache", retries=0,
                       backoff=0.0, templates="harness")


# ---------------------------------------------------------------- judge calibration

def test_calibration_recovers_an_injected_bias_and_failures(biased_server, tmp_path):
    """A judge that rates every MMHal answer one point too high (capped at 6) and fails on empty answers: the
    calibration reports exactly that bias, the hallucination-rate error it causes and the failure rate."""
    from harness.calibrate import calibrate, calibration_rows
    from harness.judges.rule import RuleJudge

    limit = 10
    server = biased_server(limit, fail_on={""})
    cal = calibrate(_judge(server, tmp_path), limit=limit)
    truth = calibration_rows("mmhal", limit)
    RuleJudge().judge_rows("mmhal", truth)
    kept = [r["score"] for r in truth if r["prediction"] != ""]
    hal = cal["tasks"]["mmhal"]
    assert hal["n"] == len(kept) and hal["failures"] == len(truth) - len(kept) == limit
    assert hal["mean_bias"] == pytest.approx(np.mean([min(6, t + 1) - t for t in kept]))
    assert 0.7 < hal["mean_bias"] < 1.0                   # +1 everywhere except where the truth is already 6
    assert hal["exact_agreement"] == pytest.approx(np.mean([t == 6 for t in kept]))
    assert hal["hallucination_rate_error"] == pytest.approx(-np.mean([t == 2 for t in kept]))   # 2 -> 3
    assert hal["spearman"] > 0.9 and hal["weighted_kappa"] < 1.0
    vet = cal["tasks"]["mmvet"]
    assert vet["exact_agreement"] == 1.0 and abs(vet["mean_bias"]) < 0.02      # MM-Vet: only rounding
    assert cal["failure_rate"] == pytest.approx(2 * limit / (len(truth) + len(calibration_rows("mmvet", limit))))
    assert cal["calls"] == server.requests == cal["tokens"]["requests"]
    assert cal["tokens"]["prompt_tokens"] == 100 * server.requests
    # the rule judge is the truth: perfect agreement, no failures, no calls
    perfect = calibrate(RuleJudge(), limit=limit)
    assert perfect["tasks"]["mmhal"]["weighted_kappa"] == 1.0 and perfect["tasks"]["mmhal"]["mean_bias"] == 0
    assert perfect["failures"] == 0 and perfect["set_hash"] == cal["set_hash"]


def test_weighted_kappa_known_values():
    from harness.calibrate import weighted_kappa
    assert weighted_kappa([0, 1, 2, 3], [0, 1, 2, 3], 4) == 1.0
    # by hand: disagreements (0,1) and (1,2) weigh 1/4 each -> Σw·obs = 1/12; Σw·exp = 1/3; κ = 1 − 1/4
    a, b = [0, 0, 1, 1, 2, 2], [0, 1, 1, 2, 2, 2]
    obs = np.zeros((3, 3))
    for x, y in zip(a, b):
        obs[x, y] += 1 / 6
    exp = np.outer(obs.sum(1), obs.sum(0))
    w = np.array([[(i - j) ** 2 / 4 for j in range(3)] for i in range(3)])
    assert weighted_kappa(a, b, 3) == pytest.approx(1 - (w * obs).sum() / (w * exp).sum())
    assert weighted_kappa(a, b, 3) == pytest.approx(0.75)


# ---------------------------------------------------------------- rejudge

def test_rejudge_with_a_biased_judge_gives_the_expected_deltas(biased_server, runs, fast_stats, tmp_path):
    from harness.io import read_jsonl
    from harness.rejudge import rejudge

    run, old = runs("correct", tmp_path / "run")
    fail_text = _rows("mmhal", "correct")[0]["prediction"]          # answers with this text fail to be judged
    server = biased_server(N_ITEMS, fail_on={fail_text})
    before = (run / "record.json").read_bytes()
    new, effects = rejudge(run, _judge(server, tmp_path), progress=False)
    assert (run / "record.rejudge-openai-biased.json").is_file() and (run / "record.json").is_file()
    assert (run / "record.json").read_bytes() == before                          # the original is untouched
    for ck in ("base", "aligned"):
        old_rows = read_jsonl(run / f"samples/{ck}/micro-mmhal.jsonl")
        new_rows = read_jsonl(run / new.checkpoints[ck]["micro-mmhal"].samples)
        failed = {r["id"] for r in new_rows if r["judge_failed"]}
        assert failed == {r["id"] for r in old_rows if r["prediction"] == fail_text}
        assert bool(failed) == (ck == "aligned")
        assert new.checkpoints[ck]["micro-mmhal"].failures["judge"] == len(failed)
        expected = np.mean([min(6, r["score"] + 1) - r["score"] for r in old_rows if r["id"] not in failed])
        assert effects[ck]["micro-mmhal"]["score"].delta == pytest.approx(expected)
        vet_old = read_jsonl(run / f"samples/{ck}/micro-mmvet.jsonl")
        vet_expected = 100 * np.mean([round(r["score"], 1) - r["score"] for r in vet_old])
        assert effects[ck]["micro-mmvet"]["score"].delta == pytest.approx(vet_expected, abs=1e-9)
    # base answers are all wrong (0 or 1), aligned all right (6): +1 moves the base, not the capped aligned
    assert effects["base"]["micro-mmhal"]["score"].delta == pytest.approx(1.0)
    assert effects["aligned"]["micro-mmhal"]["score"].delta == pytest.approx(0.0)
    assert new.comparisons["micro-mmhal"]["score"].delta == pytest.approx(
        old.comparisons["micro-mmhal"]["score"].delta - 1.0)
    assert 0 < server.requests <= 4 * N_ITEMS           # one request per distinct answer (the rest: cache), no generation


def test_rejudge_refuses_a_run_without_judged_suites(tmp_path):
    from harness.judges.rule import RuleJudge
    from harness.record import RunRecord
    from harness.rejudge import rejudge

    (tmp_path / "r").mkdir()
    RunRecord(kind="run", world="micro").save(tmp_path / "r" / "record.json")
    with pytest.raises(HarnessError, match="no judged suite"):
        rejudge(tmp_path / "r", RuleJudge(), progress=False)


# ---------------------------------------------------------------- compare any two records

def test_compare_paired_when_items_match_and_unpaired_otherwise(runs, fast_stats, tmp_path):
    from harness.compare_runs import compare_records, load_side

    a, _ = runs("hallucinated", tmp_path / "a")
    b, _ = runs("correct", tmp_path / "b")
    c, _ = runs("half", tmp_path / "c")
    paired = compare_records(load_side(a, None, "A"), load_side(b, None, "B"))
    hal = next(s for s in paired if s.suite == "micro-mmhal")
    assert hal.paired and hal.comparisons["score"].test == "paired-bootstrap"
    assert hal.comparisons["score"].delta == pytest.approx(6.0)          # hallucinated 0 -> correct 6
    assert hal.comparisons["score"].p_value < 0.05 and hal.comparisons["score"].mde is not None
    unpaired = compare_records(load_side(a, None, "A"), load_side(c, None, "B"))
    hal = next(s for s in unpaired if s.suite == "micro-mmhal")
    assert not hal.paired and "items differ (A 12, B 6" in hal.reason
    assert hal.comparisons["score"].test == "permutation" and hal.comparisons["score"].p_value < 0.05
    # same record against itself: zero delta, p 1
    same = compare_records(load_side(a, None, "A"), load_side(a, "aligned", "B"))
    assert all(abs(c.delta) < 1e-12 for s in same for c in s.comparisons.values() if c.delta == c.delta)


def test_compare_refuses_different_data_unless_allowed(runs, fast_stats, tmp_path, capsys):
    from harness.cli import main

    for name, data in (("a", "manifest-aaaa"), ("b", "manifest-bbbb"), ("c", "manifest-aaaa")):
        runs("correct", tmp_path / name)
        _set_data(tmp_path / name, data)
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "different data" in err and "--allow-mismatch" in err
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--allow-mismatch",
                 "--out", str(tmp_path / "cmp.md")]) == 0
    assert "MISMATCH" in (tmp_path / "cmp.md").read_text()
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "c")]) == 0


# ---------------------------------------------------------------- the HTML board

@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    """The committed leaderboards/ regenerated into a copy (records, reported rows, calibrations as committed)."""
    import shutil

    from harness.leaderboard import DEFAULT_DIR, regenerate
    root = tmp_path_factory.mktemp("lb") / "leaderboards"
    shutil.copytree(DEFAULT_DIR, root)
    regenerate(root)
    return root


@pytest.mark.slow
def test_committed_html_boards_are_what_regeneration_writes(regenerated):
    """Byte-stable: regenerating the committed records gives the committed pages, and a second run writes nothing
    (slow tier: the plots take ~10 s to render)."""
    from harness.leaderboard import DEFAULT_DIR, regenerate
    for world in ("micro", "real"):
        assert (regenerated / f"{world}.html").read_bytes() == (DEFAULT_DIR / f"{world}.html").read_bytes()
    assert regenerate(regenerated) == []


def test_html_board_self_contained_and_complete():
    """The committed pages (regenerated by `harness leaderboard`): relative links only, sortable tables with the
    MDE column, record, calibration and plot links that resolve, reported rows marked."""
    import re

    from harness.leaderboard import DEFAULT_DIR as boards
    page = (boards / "micro.html").read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)      # no network: only relative links
    assert page.count('<table class="sortable">') >= 2 and "MDE" in page
    records = re.findall(r'href="(records/micro/[^"]+/record.json)"', page)
    assert records and all((boards / r).is_file() for r in records)
    assert 'href="calibration/rule.json"' in page and 'src="plots/micro/' in page
    assert all((boards / src).is_file() for src in re.findall(r'src="([^"]+\.png)"', page))
    real = (boards / "real.html").read_text()
    assert "reported, not measured here" in real and 'class="reported"' in real


def _chromium():
    import shutil
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="needs Debian's chromium (.ci/run installs it: apt-get install -y "
                                                "chromium)")
def test_html_board_renders_in_headless_chromium_and_sorts(tmp_path):
    """The page renders (the DOM after scripts holds the tables), the console stays empty (no script error), and
    clicking a header sorts: a probe appended to a copy clicks 'pairs' twice (descending: the 9k run first)."""
    import subprocess

    from harness.leaderboard import DEFAULT_DIR as boards

    def load(path):
        out = subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
                              "--v=0", "--dump-dom", path.as_uri()], capture_output=True, text=True, timeout=120)
        consoles = [x for x in out.stderr.splitlines() if "CONSOLE" in x or "Uncaught" in x]
        return out.stdout, consoles

    dom, consoles = load(boards / "micro.html")
    assert consoles == [] and dom.count('<table class="sortable">') >= 2 and "Leaderboard — micro world" in dom
    probe = tmp_path / "probe.html"
    probe.write_text((boards / "micro.html").read_text().replace("</body>", """<script>
var t=document.querySelectorAll('table.sortable')[0],th=t.querySelectorAll('th')[1];th.click();th.click();
document.body.setAttribute('data-first',t.tBodies[0].rows[0].cells[1].textContent);</script></body>"""))
    dom, consoles = load(probe)
    assert consoles == [] and 'data-first="9k"' in dom


# ---------------------------------------------------------------- a clean terminal while training

def _tiny_preferences(path, n=4):
    from datasets import Dataset
    from PIL import Image

    def turn(role, text, image=False):
        return [{"role": role, "content": ([{"type": "image"}] if image else []) + [{"type": "text", "text": text}]}]
    Dataset.from_dict({"prompt": [turn("user", "describe this image .", True)] * n,
                       "chosen": [turn("assistant", "there is a small red cup on the top left .")] * n,
                       "rejected": [turn("assistant", "there is a big blue dog .")] * n,
                       "images": [[Image.new("RGB", (32, 32), (200, 30, 30))]] * n}).save_to_disk(str(path))


@pytest.mark.slow
def test_training_shows_one_rich_line_and_logs_every_step(tmp_path, capfd, monkeypatch):
    """(slow tier: ~18 s, most of it importing TRL) Two DPO steps on the committed micro policy: no TRL dicts and no "Loading weights" bars on the terminal,
    the rich line with loss / margin / acc instead, and every logged step in train.log."""
    from pipelines.dpo import DPOTrainConfig, train_dpo

    monkeypatch.delenv("HARNESS_QUIET", raising=False)
    monkeypatch.delenv("HARNESS_ZOO_DIR", raising=False)
    _tiny_preferences(tmp_path / "ds")
    cfg = DPOTrainConfig(lr=1e-3, lora_r=2, lora_alpha=4, lora_dropout=0.0, batch_size=2, max_steps=2,
                         warmup_ratio=0.0)
    summary = train_dpo(cfg, base="micro-llava", dataset_dir=tmp_path / "ds", out_dir=tmp_path / "out", seed=0)
    out = capfd.readouterr()
    terminal = out.out + out.err
    assert "{'loss'" not in terminal and "'rewards/margins'" not in terminal      # TRL's printed dicts
    assert "Loading weights" not in terminal and "Tokenizing" not in terminal
    assert "train dpo" in terminal and "loss " in terminal and "margin " in terminal and "acc " in terminal
    lines = [json.loads(x) for x in (tmp_path / "out" / "train.log").read_text().splitlines()]
    steps = [x for x in lines if "loss" in x]
    assert [x["step"] for x in steps] == [1, 2] and summary["steps"] == 2
    assert steps[-1]["loss"] == pytest.approx(summary["final_loss"]) and "rewards/margins" in steps[-1]


def test_report_to_is_off_by_default_and_checked():
    from harness.train_progress import check_report_to
    from pipelines.dpo import DPOTrainConfig

    assert DPOTrainConfig().report_to == [] and check_report_to([]) == "none"
    with pytest.raises(HarnessError, match="unknown tracker"):
        DPOTrainConfig(report_to=["mlflow"])
    import importlib.util
    missing = next((t for t in ("tensorboard", "trackio", "wandb") if importlib.util.find_spec(t) is None), None)
    if missing:
        with pytest.raises(HarnessError, match="not installed"):
            check_report_to([missing])


def test_before_after_tables_show_the_mde(capsys):
    """table.md and the terminal table carry an MDE per metric: the stored one, or '≈' from the Δ CI for a record
    made before MDEs were stored."""
    import copy

    from records_fixtures import make_record
    from rich.console import Console

    from harness.tables import HEADERS_RUN, before_after_markdown, print_before_after
    rec = make_record()
    comp = rec.comparisons["toy-pope"]["accuracy"]
    assert comp.mde is not None and comp.mde > 0
    md = before_after_markdown(rec)
    assert "MDE" in HEADERS_RUN and f"{comp.mde:.3f}" in md
    old = copy.deepcopy(rec)
    for comps in old.comparisons.values():
        for c in comps.values():
            c.mde = None
    assert f"≈{stats.mde_from_ci(comp.ci):.3f}" in before_after_markdown(old)
    print_before_after(rec, Console(width=200, force_terminal=False))
    assert "MDE" in capsys.readouterr().out


def test_mcnemar_mde_is_on_the_metrics_scale():
    """AMBER reports accuracy in %: its MDE is McNemar's difference of shares times 100."""
    rng = np.random.default_rng(1)
    base = [{"id": i, "ok": bool(rng.random() < 0.7)} for i in range(300)]
    aligned = [{**r, "ok": r["ok"] if rng.random() < 0.9 else not r["ok"]} for r in base]
    share = lambda rows: float(np.mean([r["ok"] for r in rows]))
    percent = lambda rows: 100 * share(rows)
    mde = stats.metric_mde(base, aligned, share, item_key="ok")
    assert stats.metric_mde(base, aligned, percent, item_key="ok") == pytest.approx(100 * mde)


def test_compare_needs_samples_and_the_same_suite_version(runs, fast_stats, tmp_path, capsys):
    from harness.cli import main
    from harness.leaderboard import DEFAULT_DIR

    published = DEFAULT_DIR / "records" / "micro" / "rm-dpo-2k-s0-ee81d910" / "record.json"
    a, _ = runs("correct", tmp_path / "a")
    assert main(["compare", str(a), str(published), "--suites", "micro-mmhal"]) == 2
    assert "needs the run directory" in capsys.readouterr().err
    b, _ = runs("correct", tmp_path / "b")
    d = json.loads((b / "record.json").read_text())
    d["checkpoints"]["aligned"]["micro-mmhal"]["version"] = "1"
    (b / "record.json").write_text(json.dumps(d))
    assert main(["compare", str(a), str(b), "--suites", "micro-mmhal"]) == 2
    assert "suite version 2 vs 1" in capsys.readouterr().err


def test_progress_callback_logs_steps_and_warnings_without_printing(tmp_path, capsys):
    import warnings
    from types import SimpleNamespace

    from harness.train_progress import RichTrainProgress
    cb = RichTrainProgress(tmp_path / "train.log", "t", show=False)
    state = SimpleNamespace(global_step=0, max_steps=2, is_world_process_zero=True)
    cb.on_train_begin(None, state, None)
    state.global_step = 1
    cb.on_log(None, state, None, logs={"loss": 0.5, "rewards/margins": 0.25, "rewards/accuracies": 0.75})
    warnings.warn("a library complains", UserWarning)
    cb.on_train_end(None, state, None)
    lines = [json.loads(x) for x in (tmp_path / "train.log").read_text().splitlines()]
    assert lines[0] == {"step": 1, "loss": 0.5, "rewards/margins": 0.25, "rewards/accuracies": 0.75}
    assert lines[1]["warning"] == "UserWarning: a library complains"
    assert cb.stats_text() == "loss 0.500  margin 0.250  acc 0.750"
    assert capsys.readouterr().err == ""
    assert warnings.showwarning is not cb._log_warning                 # restored after training


@pytest.mark.slow
def test_report_to_wandb_offline_reaches_the_trainer(tmp_path, monkeypatch):
    """(slow tier) train.report_to=[wandb] with WANDB_MODE=offline: TRL's wandb callback writes an offline run."""
    from pipelines.dpo import DPOTrainConfig, train_dpo

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("HARNESS_ZOO_DIR", raising=False)
    _tiny_preferences(tmp_path / "ds")
    cfg = DPOTrainConfig(lr=1e-3, lora_r=2, lora_alpha=4, lora_dropout=0.0, batch_size=2, max_steps=2,
                         warmup_ratio=0.0, report_to=["wandb"])
    train_dpo(cfg, base="micro-llava", dataset_dir=tmp_path / "ds", out_dir=tmp_path / "out", seed=0)
    assert list((tmp_path / "wandb").glob("offline-run-*"))


def test_paired_t_mde_is_finite_for_very_few_pairs():
    """n = 2 (df 1, t_crit 12.7) lies beyond the normal-approximation bracket; it must still give an MDE."""
    from harness.stats import mde_paired_t

    two, three = mde_paired_t(1.0, 2), mde_paired_t(1.0, 3)
    assert math.isfinite(two) and two > three > mde_paired_t(1.0, 30)
