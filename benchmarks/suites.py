"""The benchmark suites: name, lmms-eval task(s), metrics with declared direction, primary metric, version.

Importing this module is cheap (no torch, no lmms-eval). Each suite is one entry point in the `harness.suites`
group (pyproject.toml) and carries its lmms-eval task folder (`include`) and, when judged, its rubric. Gated metrics
(`gated=True`) are the hallucination metrics `harness gate` checks. Accuracy-like yes/no metrics carry
`test="mcnemar", item_key="correct"` so comparisons use the exact paired test on items.

Micro suites read rows written by the micro tasks' process_results; real suites read rows written by our task
utils (benchmarks/tasks/real) or, for lmms-eval's built-in POPE tasks, rows built by benchmarks.rows.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks import metrics as M
from harness.data import tasks_for
from harness.suite import Metric, Suite

# the real suites' task YAMLs (prompts, generation, scoring); they run from the data root's generated copies,
# which point their data files at `harness data prepare`'s documents (harness.data.tasks_for)
REAL_TASKS = Path(__file__).resolve().parent / "tasks" / "real"


def micro_tasks() -> Path:
    """The micro suites' include folder: benchmarks/tasks/micro with its generated data (built once, cached)."""
    from benchmarks.micro_data import build_micro_tasks
    return build_micro_tasks()

POPE_SPLITS = ("random", "popular", "adversarial")
MMHAL_TYPES = ("attribute", "adversarial", "comparison", "counting", "relation", "environment", "holistic", "other")
MICRO_MMVET_CAPS = ("recognition", "counting", "spatial", "ocr", "generation")
REAL_MMVET_CAPS = ("rec", "ocr", "know", "gen", "spat", "math")


def _split_is(split: str):
    def in_split(row: dict) -> bool:
        return row.get("split") == split
    in_split.__name__ = f"split_{split}"
    return in_split


def _is_discriminative(row: dict) -> bool:
    return row.get("kind") == "discriminative"


def _dimension_is(dimension: str):
    def in_dimension(row: dict) -> bool:
        return row.get("kind") == "discriminative" and row.get("dimension") == dimension
    in_dimension.__name__ = f"dimension_{dimension}"
    return in_dimension


def _is_generative(row: dict) -> bool:
    return row.get("kind", "generative") == "generative"


def _has_capability(cap: str):
    def needs(row: dict) -> bool:
        return cap in row.get("capabilities", ())
    needs.__name__ = f"capability_{cap}"
    return needs


def pope_metrics() -> tuple[Metric, ...]:
    """Per split and averaged over the three splits (LLaVA reports the split-averaged F1)."""
    out = [
        Metric("f1", "higher", M.per_split_mean(M.f1, POPE_SPLITS), gated=True,
               description="F1 (positive = yes), mean of the three splits"),
        Metric("accuracy", "higher", M.per_split_mean(M.accuracy, POPE_SPLITS), test="mcnemar", item_key="correct",
               description="accuracy, mean of the three splits (unparsed = wrong)"),
        Metric("precision", "higher", M.per_split_mean(M.precision, POPE_SPLITS)),
        Metric("recall", "higher", M.per_split_mean(M.recall, POPE_SPLITS)),
        Metric("yes_ratio", "target:0.5", M.per_split_mean(M.yes_ratio, POPE_SPLITS),
               description="share of predicted yes (labels are 50/50)"),
        Metric("parse_failure", "lower", M.parse_failure_rate, description="answers with neither yes nor no"),
    ]
    for s in POPE_SPLITS:
        f = _split_is(s)
        out += [Metric(f"{s}/accuracy", "higher", M.accuracy, test="mcnemar", item_key="correct", rows_filter=f),
                Metric(f"{s}/precision", "higher", M.precision, rows_filter=f),
                Metric(f"{s}/recall", "higher", M.recall, rows_filter=f),
                Metric(f"{s}/f1", "higher", M.f1, rows_filter=f),
                Metric(f"{s}/yes_ratio", "target:0.5", M.yes_ratio, rows_filter=f)]
    return tuple(out)


def real_pope_metrics() -> tuple[Metric, ...]:
    """POPE with its evaluate.py reading of answers (benchmarks.official.pope): every answer is a yes or a no, so
    `parse_failure` becomes `neither`, the share of answers holding neither word (counted all the same)."""
    from benchmarks.official.pope import neither_rate

    return tuple(m for m in pope_metrics() if m.name != "parse_failure") + (
        Metric("neither", "lower", neither_rate,
               description="answers with neither yes nor no (the official reading counts them, mostly as yes)"),)


def amber_metrics() -> tuple[Metric, ...]:
    return (
        Metric("amber_score", "higher", M.amber_score, description="((100 - CHAIR) + discriminative F1) / 2"),
        Metric("chair", "lower", M.amber_chair, gated=True, rows_filter=_is_generative,
               description="hallucinated / mentioned objects x 100"),
        Metric("cover", "higher", M.amber_cover, rows_filter=_is_generative,
               description="truth objects mentioned / truth objects x 100"),
        Metric("hal", "lower", M.amber_hal, gated=True, rows_filter=_is_generative,
               description="% responses with a hallucinated object"),
        Metric("cog", "lower", M.amber_cog, rows_filter=_is_generative,
               description="% annotated hallu objects that appear (lower is better)"),
        Metric("d_f1", "higher", M.amber_d_f1, rows_filter=_is_discriminative,
               description="discriminative F1 x 100, positive class = No"),
        Metric("d_accuracy", "higher", M.amber_d_accuracy, test="mcnemar", item_key="correct",
               rows_filter=_is_discriminative),
        Metric("existence_f1", "higher", M.amber_d_dimension_f1("existence"), rows_filter=_dimension_is("existence")),
        Metric("attribute_f1", "higher", M.amber_d_dimension_f1("attribute"), rows_filter=_dimension_is("attribute")),
        Metric("relation_f1", "higher", M.amber_d_dimension_f1("relation"), rows_filter=_dimension_is("relation")),
        Metric("parse_failure", "lower", M.parse_failure_rate, rows_filter=_is_discriminative),
    )


def real_amber_metrics() -> tuple[Metric, ...]:
    """AMBER as its inference.py prints it (benchmarks.official.amber; docs/benchmarks.md § AMBER): each value is
    the script's, rounded to 0.1; answers other than exactly "Yes"/"No" are wrong (share: parse_failure)."""
    from benchmarks.official import amber as A

    def disc(name: str, stat: str, group: str | None, **kw) -> Metric:
        keep = _is_discriminative if group is None else (
            _dimension_is(group) if group in ("existence", "attribute", "relation") else _subtype_is(group))
        return Metric(name, "higher", A.discriminative(stat, group), rows_filter=keep, **kw)
    out = [Metric("amber_score", "higher", A.amber_score, description="((100 - CHAIR) + F1) / 2, official"),
           Metric("chair", "lower", A.generative("chair"), gated=True, rows_filter=_is_generative,
                  description="hallucinated / extracted vocabulary nouns x 100 (inference.py)"),
           Metric("cover", "higher", A.generative("cover"), rows_filter=_is_generative),
           Metric("hal", "lower", A.generative("hal"), gated=True, rows_filter=_is_generative),
           Metric("cog", "lower", A.generative("cog"), rows_filter=_is_generative,
                  description="annotated hallu objects mentioned x 100 (lower is better)"),
           disc("d_accuracy", "accuracy", None, test="mcnemar", item_key="correct"),
           disc("d_precision", "precision", None), disc("d_recall", "recall", None),
           disc("d_f1", "f1", None, description="positive class = No, exact Yes/No answers")]
    for group in ("existence", "attribute", "state", "number", "action", "relation"):
        out += [disc(f"{group}_accuracy", "accuracy", group), disc(f"{group}_f1", "f1", group)]
    out.append(Metric("parse_failure", "lower", M.parse_failure_rate, rows_filter=_is_discriminative,
                      description='answers other than exactly "Yes" / "No" (wrong for the official script)'))
    return tuple(out)


def _subtype_is(subtype: str):
    def of_subtype(row: dict) -> bool:
        return row.get("kind") == "discriminative" and row.get("subtype") == subtype
    of_subtype.__name__ = f"subtype_{subtype}"
    return of_subtype


def _qtype_is(qtype: str):
    def of_type(row: dict) -> bool:
        return row.get("qtype") == qtype
    of_type.__name__ = f"qtype_{qtype}"
    return of_type


def mmhal_metrics() -> tuple[Metric, ...]:
    return (
        Metric("score", "higher", M.mmhal_score, description="mean 0-6 rating"),
        Metric("hallucination_rate", "lower", M.mmhal_hallucination_rate, gated=True,
               description="share of ratings < 3"),
    ) + tuple(Metric(f"{t}/score", "higher", M.mmhal_score, rows_filter=_qtype_is(t)) for t in MMHAL_TYPES)


def real_mmhal_metrics() -> tuple[Metric, ...]:
    """Ours (an unreadable judge reply is a counted failure) and eval_gpt_mmhal.py's (it scores such a reply 0),
    both over the same replies (benchmarks.official.mmhal; docs/benchmarks.md § MMHal-Bench)."""
    from benchmarks.official import mmhal as official

    return mmhal_metrics() + (
        Metric("official/score", "higher", official.official_score,
               description="the official script's mean rating: a reply without exactly one rating counts 0"),
        Metric("official/hallucination_rate", "lower", official.official_hallucination_rate,
               description="the official script's share of ratings < 3 (unreadable replies count as 0)"),
    ) + tuple(Metric(f"official/{t}/score", "higher", official.official_score, rows_filter=_qtype_is(t))
              for t in MMHAL_TYPES)


def real_mmvet_metrics(caps) -> tuple[Metric, ...]:
    """Ours and mm-vet_evaluator.py's (an unreadable reply ends as 0.0) over the same replies."""
    from benchmarks.official import mmvet as official

    return mmvet_metrics(caps) + (
        Metric("official/score", "higher", official.official_score(),
               description="the official evaluator's total: unreadable replies score 0.0"),) + tuple(
        Metric(f"official/{c}", "higher", official.official_score(c), rows_filter=_has_capability(c)) for c in caps)


def mmvet_metrics(caps) -> tuple[Metric, ...]:
    return (Metric("score", "higher", M.mmvet_score, description="mean 0-1 correctness x 100"),) + tuple(
        Metric(f"{c}", "higher", M.mmvet_capability(c), rows_filter=_has_capability(c)) for c in caps)


def chair_metrics() -> tuple[Metric, ...]:
    return (
        Metric("chair_s", "lower", M.chair_s, gated=True, description="captions with a hallucinated object"),
        Metric("chair_i", "lower", M.chair_i, gated=True, description="hallucinated / mentioned objects"),
        Metric("recall", "higher", M.object_recall, description="true objects mentioned / true objects"),
        Metric("length", "target:1.0", M.length_ratio,
               description="mean words / mean words of the ground-truth descriptions (short captions cut CHAIR)"),
        Metric("well_formed", "higher", M.well_formed_rate),
    )


def real_chair_metrics() -> tuple[Metric, ...]:
    """Object HalBench: no ground-truth descriptions, so length is reported as mean words (target: none)."""
    return chair_metrics()[:3] + (Metric("length_words", "higher", M.mean_length,
                                         description="mean words per caption (descriptive, not a goal)"),)


# Every suite also reports how many of its answers broke (the "well-formed": no loops, no empty answers;
# micro answers cut off or unterminated count too, see harness.world.texts.degeneration). Version 2 of every suite
# added it: rows carry `degenerate`. McNemar on the per-item flag. micro-chair's `well_formed` stays the stricter
# check (a class named twice fails it).
DEGENERATE = Metric("degenerate", "lower", M.degenerate_rate, test="mcnemar", item_key="degenerate",
                    description="answers that broke: empty, a loop (micro: also unterminated or cut off), share")


def _with_degenerate(metrics: tuple[Metric, ...]) -> tuple[Metric, ...]:
    return metrics + (DEGENERATE,)


# ---------------------------------------------------------------- micro world

MICRO_POPE = Suite("micro-pope", "micro", ("harness_micro_pope",), _with_degenerate(pope_metrics()), primary="f1",
                   version="2", include=micro_tasks,
                   description="3 splits x 100 held-out scenes x 6 questions (3 present, 3 absent per split rule)")
MICRO_AMBER = Suite("micro-amber", "micro", ("harness_micro_amber_g", "harness_micro_amber_d"),
                    _with_degenerate(amber_metrics()), primary="amber_score", version="2", include=micro_tasks,
                    description="200 descriptions + 600 yes/no (existence, attribute, relation), positive = No")
MICRO_MMHAL = Suite("micro-mmhal", "micro", ("harness_micro_mmhal",), _with_degenerate(mmhal_metrics()),
                    primary="score", version="2", judged=True, rubric="mmhal", include=micro_tasks,
                    description="8 question types x 20, 0-6 rubric (rule judge)")
MICRO_MMVET = Suite("micro-mmvet", "micro", ("harness_micro_mmvet",),
                    _with_degenerate(mmvet_metrics(MICRO_MMVET_CAPS)), primary="score", version="2", judged=True,
                    rubric="mmvet", include=micro_tasks,
                    description="recognition, counting, spatial, OCR (rendered digits), generation; 40 each")
MICRO_CHAIR = Suite("micro-chair", "micro", ("harness_micro_chair",), _with_degenerate(chair_metrics()),
                    primary="chair_s", version="2", include=micro_tasks,
                    description="250 held-out scenes, 'describe this image .'")

# ---------------------------------------------------------------- real world

POPE = Suite("pope", "real", ("harness_pope_random", "harness_pope_pop", "harness_pope_adv"),
             _with_degenerate(real_pope_metrics()), primary="f1", version="3",
             include=tasks_for("pope"),
             description="lmms-eval POPE splits, read as POPE's evaluate.py, scored per split with the true yes-ratio")
AMBER = Suite("amber", "real", ("harness_amber_g", "harness_amber_d"), _with_degenerate(real_amber_metrics()),
              primary="amber_score", version="3", include=tasks_for("amber"),
              description="AMBER generative (lmms-eval's dataset) + discriminative, scored as AMBER's inference.py")
MMHAL = Suite("mmhal", "real", ("harness_mmhal",), _with_degenerate(real_mmhal_metrics()), primary="score", version="3",
              judged=True, rubric="mmhal", include=tasks_for("mmhal"),
              description="MMHal-Bench, 96 items, 0-6 rubric by an OpenAI-compatible judge")
MMVET = Suite("mmvet", "real", ("harness_mmvet",), _with_degenerate(real_mmvet_metrics(REAL_MMVET_CAPS)),
              primary="score", version="3", judged=True, rubric="mmvet", include=tasks_for("mmvet"),
              description="MM-Vet (lmms-eval's dataset and prompt), judged by our judge")
OBJECT_HALBENCH = Suite("object-halbench", "real", ("harness_object_halbench",),
                        _with_degenerate(real_chair_metrics()),
                        primary="chair_s", version="3", include=tasks_for("object-halbench"),
                        description="Object HalBench: CHAIRs/CHAIRi on COCO, objects found as the original chair.py")

MICRO_DEFAULT = ("micro-pope", "micro-amber", "micro-mmhal", "micro-mmvet", "micro-chair")
REAL_DEFAULT = ("pope", "amber", "mmhal", "mmvet", "object-halbench")
