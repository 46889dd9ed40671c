"""benchmarks.headroom and benchmarks.hallucination_kinds on hand-made cases (no model)."""

import json

import pytest

from benchmarks.headroom import _clean, _rm_pair_accuracy, _stats
from harness.world.scene import Obj, make_scene
from harness.world.texts import describe_objects

CUP = Obj("cup", "red", "big", (0, 0))
FORK = Obj("fork", "blue", "small", (1, 1))
PLATE = Obj("plate", "green", "small", (0, 1))     # kitchen objects; the scene below holds only cup and fork
SCENE = make_scene("kitchen", [CUP, FORK])

TRUE = describe_objects([CUP, FORK])
HALLUCINATED = describe_objects([CUP, PLATE])                  # names an absent plate, misses the fork
REPEATED = describe_objects([CUP, Obj("cup", "red", "big", (1, 0))])   # names the cup twice: malformed
PARTIAL = describe_objects([CUP])


def test_stats_count_hallucination_recall_and_well_formed():
    s = _stats([TRUE, HALLUCINATED, REPEATED, PARTIAL], [SCENE] * 4)
    assert s["chair_s"] == 0.25                     # only HALLUCINATED names an absent object
    assert s["recall"] == round((2 + 1 + 1 + 1) / 8, 3)
    assert s["well_formed"] == 0.75                 # REPEATED mentions an object twice
    assert _clean(TRUE, SCENE) and _clean(PARTIAL, SCENE)
    assert not _clean(HALLUCINATED, SCENE) and not _clean(REPEATED, SCENE)


def test_rm_pair_accuracy_uses_only_informative_pairs():
    texts = [TRUE, HALLUCINATED, REPEATED]
    # TRUE vs HALLUCINATED: both well-formed, fewer hallucinations wins; TRUE vs REPEATED: same hallucination
    # count (0), well-formed wins; HALLUCINATED vs REPEATED differ in both, so the pair is not used.
    good_rm = _rm_pair_accuracy([texts], [[3.0, 1.0, 2.0]], [SCENE])
    assert good_rm == {"fewer_hallucinated": {"accuracy": 1.0, "pairs": 1}, "well_formed": {"accuracy": 1.0, "pairs": 1},
                       # TRUE and HALLUCINATED both name two objects: the plate is a misreading of the fork
                       "fewer_hallucinated_same_count": {"accuracy": 1.0, "pairs": 1},
                       "fewer_hallucinated_other_count": {"accuracy": None, "pairs": 0}}
    three = describe_objects([CUP, PLATE, FORK])                 # an invented third object
    other = _rm_pair_accuracy([[TRUE, three]], [[2.0, 1.0]], [SCENE])
    assert other["fewer_hallucinated_other_count"] == {"accuracy": 1.0, "pairs": 1}
    assert other["fewer_hallucinated_same_count"]["pairs"] == 0
    bad_rm = _rm_pair_accuracy([texts], [[0.0, 1.0, 2.0]], [SCENE])
    assert bad_rm["fewer_hallucinated"]["accuracy"] == 0.0 and bad_rm["well_formed"]["accuracy"] == 0.0
    assert _rm_pair_accuracy([[TRUE, TRUE]], [[1.0, 1.0]], [SCENE])["well_formed"] == {"accuracy": None, "pairs": 0}


def test_without_hallucinated_cuts_only_wrong_phrases():
    from benchmarks.headroom import _without_hallucinated
    three = describe_objects([CUP, PLATE, FORK])
    assert _without_hallucinated(three, SCENE) == TRUE
    assert _without_hallucinated(TRUE, SCENE) is None                       # nothing wrong: no correction
    assert _without_hallucinated(describe_objects([PLATE]), SCENE) is None  # nothing left
    assert _without_hallucinated("yes .", SCENE) is None


def test_hallucination_kinds_split_descriptions_by_cause(tmp_path):
    from benchmarks.hallucination_kinds import kinds, main
    rows = [{"mentioned": ["cup", "fork", "dog"], "truth": ["cup", "fork"]},      # extra slot (dog invented)
            {"mentioned": ["cup", "dog"], "truth": ["cup", "fork"]},              # fork misread as dog
            {"mentioned": ["cup"], "truth": ["cup", "fork"]},                     # fork left out
            {"mentioned": ["cup", "fork"], "truth": ["cup", "fork"]},             # right
            {"mentioned": ["cup", "cup"], "truth": ["cup", "fork"]}]              # fork misread as a second cup
    k = kinds(rows)
    assert (k["extra_slot"], k["substitution"], k["short"]) == (1, 1, 1)
    assert (k["mentions"], k["absent_mentions"], k["absent_share"]) == (10, 2, 0.2)
    # the dog in the extra slot is invented, not misread: misread = the dog read for the fork + the second cup
    assert (k["repeated"], k["misread"]) == (1, 2)
    d = tmp_path / "run" / "samples" / "base"
    d.mkdir(parents=True)
    (d / "micro-amber.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert main([str(tmp_path / "run")]) == 0
    with pytest.raises(SystemExit, match="no samples"):
        main([str(tmp_path / "nothing")])


def test_hallucination_kinds_of_preference_pairs(tmp_path):
    from benchmarks.hallucination_kinds import main, pair_kinds
    scene = {"theme": "kitchen", "objects": [{"cls": "cup"}, {"cls": "fork"}]}
    d = tmp_path / "run" / "stages" / "synth-parts" / "pairs-abc"
    d.mkdir(parents=True)
    rows = [{"scene": scene, "chosen": TRUE, "rejected": describe_objects([CUP, PLATE, FORK])},
            {"scene": scene, "chosen": HALLUCINATED, "rejected": PARTIAL}]
    (d / "pairs.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    k = pair_kinds(tmp_path / "run")
    assert (k["chosen"]["substitution"], k["chosen"]["extra_slot"]) == (1, 0)
    assert (k["rejected"]["extra_slot"], k["rejected"]["short"], k["rejected"]["substitution"]) == (1, 1, 0)
    assert main(["--pairs", str(tmp_path / "run")]) == 0
    with pytest.raises(SystemExit, match="pairs"):
        main(["--pairs", str(tmp_path / "nothing")])


def test_degeneration_counts_each_broken_answer_once(tmp_path):
    from benchmarks.hallucination_kinds import degeneration, main
    texts = ["", "there is a cup cup cup .", "there is a small red cup on the top", "on the .", "on the top left .",
             "yes ."]
    assert degeneration(texts) == {"answers": 6, "empty": 1, "loop": 1, "unterminated": 1, "truncated": 1}
    d = tmp_path / "run" / "samples" / "aligned"
    d.mkdir(parents=True)
    (d / "micro-mmhal.jsonl").write_text("\n".join(json.dumps({"prediction": t}) for t in texts) + "\n")
    assert main(["--degenerate", str(tmp_path / "run")]) == 0
    with pytest.raises(SystemExit, match="samples"):
        main(["--degenerate", str(tmp_path / "nothing")])
