"""Official scoring (benchmarks.official): the harness reproduces each benchmark's own script digit for digit on
the committed golden fixtures (tests/golden/*.json: crafted predictions + the official script's printed output,
computed once with the official code named in each fixture's header)."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parent / "golden"
REAL = Path(__file__).resolve().parent.parent / "benchmarks" / "tasks" / "real"


def _golden(name: str) -> dict:
    return json.loads((GOLDEN / name).read_text())


@pytest.fixture(scope="module")
def real_utils():
    spec = importlib.util.spec_from_file_location("harness_real_task_utils_official", REAL / "utils.py")
    utils = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(utils)
    return utils


def _printed(value: float, official: str) -> str:
    """Our value printed with as many decimals as the official script printed."""
    decimals = len(official.split(".")[1]) if "." in official else 0
    return f"{value:.{decimals}f}"


# ---------------------------------------------------------------- AMBER discriminative

def _amber_d_rows(utils) -> list[dict]:
    items = _golden("amber_d.json")["items"]
    return [utils.amber_d_process_results({"id": it["id"], "query": "q", "truth": it["truth"], "type": it["type"]},
                                          [it["response"]])["harness_items"] for it in items]


def test_amber_discriminative_matches_inference_py(real_utils):
    from benchmarks.suites import AMBER

    values = AMBER.compute(_amber_d_rows(real_utils))
    official = _golden("amber_d.json")["official_output"]
    for group, stats in official.items():
        for stat in ("accuracy", "f1"):
            name = f"d_{stat}" if group == "all" else f"{group}_{stat}"
            assert _printed(values[name], stats[stat]) == stats[stat], (name, values[name], stats[stat])
    assert _printed(values["d_precision"], official["all"]["precision"]) == official["all"]["precision"]
    assert _printed(values["d_recall"], official["all"]["recall"]) == official["all"]["recall"]


def test_amber_official_types_and_unknown_type_fails_before_generation(real_utils):
    from benchmarks.official.amber import discriminative_type

    assert discriminative_type("discriminative-hallucination") == ("existence", None)
    assert discriminative_type("relation") == ("relation", None)
    assert discriminative_type("discriminative-attribute-number") == ("attribute", "number")
    from harness.errors import HarnessError

    with pytest.raises(HarnessError, match="official types"):
        real_utils.amber_d_doc_to_text({"query": "Is there a dog?", "type": "discriminative-existence"})
    assert real_utils.amber_d_doc_to_text({"query": "Is there a dog?", "type": "relation"}) == "Is there a dog?"


def test_amber_discriminative_counts_only_exact_yes_no(real_utils):
    row = real_utils.amber_d_process_results({"id": 1, "query": "q", "truth": "no",
                                              "type": "discriminative-hallucination"}, ["No."])["harness_items"]
    assert row["parsed"] is None and not row["correct"] and row["parsed_lenient"] == "no"


# ---------------------------------------------------------------- POPE

def _pope_rows() -> list[dict]:
    from benchmarks.rows import pope_answer_row

    splits = _golden("pope.json")["splits"]
    return [pope_answer_row(split, it["question_id"], it["question"], it["label"], it["answer"])
            for split, block in splits.items() for it in block["items"]]


def test_pope_matches_evaluate_py_per_split():
    from benchmarks.metrics import confusion
    from benchmarks.suites import POPE

    rows = _pope_rows()
    values = POPE.compute(rows)
    for split, block in _golden("pope.json")["splits"].items():
        official = block["official_output"]
        for stat in ("accuracy", "precision", "recall", "f1", "yes_ratio"):
            assert repr(values[f"{split}/{stat}"]) == official[stat], (split, stat)
        tp, fp, tn, fn = confusion([r for r in rows if r["split"] == split])
        assert (tp, fp, tn, fn) == (official["TP"], official["FP"], official["TN"], official["FN"])


def test_pope_official_reading_counts_answers_with_neither_word():
    from benchmarks.official.pope import official_yes_no
    from benchmarks.suites import POPE

    assert [official_yes_no(a) for a in ("", "Nope.", "NO", "There isn't a dog.", "No.", "It is not.",
                                         "Yes. No.", "yes, no")] == ["yes", "yes", "yes", "yes", "no", "no",
                                                                     "yes", "no"]
    rows = _pope_rows()
    neither = sum(r["neither"] for r in rows)
    assert 0 < neither < len(rows)
    assert POPE.compute(rows)["neither"] == pytest.approx(neither / len(rows))
    assert all(r["parsed"] in ("yes", "no") for r in rows)      # still counted


# ---------------------------------------------------------------- CHAIR / Object HalBench

def _tokenizer():
    from benchmarks.official import nlp
    from harness.errors import HarnessError

    try:
        nlp.require_tokenizer()
    except HarnessError as e:     # NLTK's Punkt parameters: the real extra installs them (docs/benchmarks.md)
        pytest.skip(str(e))
    return nlp.word_tokenize


def test_chair_matches_original_chair_py(real_utils):
    from benchmarks.suites import OBJECT_HALBENCH

    tokenize = _tokenizer()
    golden = _golden("chair.json")
    rows = [real_utils.object_halbench_process_results({"image_id": it["image_id"], "truth": it["truth"]},
                                                       [it["caption"]])["harness_items"] for it in golden["items"]]
    for row, it in zip(rows, golden["items"]):
        official = golden["official_per_caption"][str(it["image_id"])]
        assert row["mentioned"] == official["generated"], it["caption"]
        assert [list(p) for p in zip(row["mentioned_words"], row["mentioned"]) if p[1] not in row["truth"]] == \
            official["hallucinated"]
    values = OBJECT_HALBENCH.compute(rows)
    assert repr(values["chair_s"]) == golden["official_output"]["CHAIRs"]
    assert repr(values["chair_i"]) == golden["official_output"]["CHAIRi"]
    assert tokenize("a dog.") == ["a", "dog", "."]


def test_chair_ground_truth_adds_the_reference_captions_objects():
    from benchmarks.official import chair

    row = chair.score_caption("A man walks a dog past a bench .", ["person"], str.split,
                              ["a boy with his puppy .", "two people and a dog near a park bench ."])
    assert row["truth"] == ["person", "dog", "bench"] and row["hallucinated_objects"] == []
    assert chair.score_caption("A man walks a dog past a bench .", ["person"], str.split)["hallucinated_objects"] == \
        ["dog", "bench"]


def test_chair_tables_reproduce_the_original_quirks():
    from benchmarks.official import chair

    caption = "A man, two kids and people at a desk; knives and mice; a hot dog; a teddy bear; a bus; buses"
    _, classes = chair.caption_objects(caption, lambda text: text.replace(";", " ").replace(",", " ").split())
    assert classes == ["person", "person", "person", "dining table", "knife", "mouse", "hot dog", "teddy bear", "bus"]
    assert chair.singularize("glass") == "glas" and chair.singularize("people") == "person"
    assert chair.caption_objects("the seat of the toilet", str.split)[1] == ["toilet"]
    assert chair.caption_objects("a baby bird and a passenger jet", str.split)[1] == ["bird", "airplane"]


# ---------------------------------------------------------------- judges: MMHal-Bench, MM-Vet

def _judged_rows(name: str, task: str, harness_parse) -> list[dict]:
    rows = []
    for it in _golden(name)["items"]:
        score = harness_parse(it["judge_reply"])
        row = {"question": it["question"], "target": it.get("gt_answer", it.get("answer")),
               "prediction": it.get("model_answer", it.get("prediction")), "qtype": it.get("question_type"),
               "capabilities": it.get("capability", []), "image_content": it.get("image_content"),
               "judge_raw": it["judge_reply"], "score": score, "judge_failed": score is None}
        if score is None:
            row["judge_error"] = "unparseable judge reply"      # as harness.judges.openai_judge records it
        rows.append(row)
    return rows


def test_mmhal_official_template_and_summary_match_eval_gpt_mmhal_py():
    from benchmarks.official import mmhal
    from benchmarks.suites import MMHAL_TYPES
    from harness.judges import templates

    golden = _golden("mmhal.json")
    tpl = templates.get("mmhal-official")
    rows = _judged_rows("mmhal.json", "mmhal", tpl.parse)
    assert tpl.build(rows[0]) == golden["official_first_prompt"]
    official = golden["official_output"]
    assert f"{mmhal.official_score(rows):.2f}" == official["average_score"]
    assert f"{mmhal.official_hallucination_rate(rows):.2f}" == official["hallucination_rate"]
    assert golden["official_output"]["per_type_order"] == list(MMHAL_TYPES)
    for qtype, printed in zip(MMHAL_TYPES, official["per_type"]):
        assert str(round(mmhal.official_score([r for r in rows if r["qtype"] == qtype]), 2)) == printed
    # the harness's correction: no single rating (none, several, 6.5, 10) is a counted failure, never a 0
    failed = [r["judge_raw"] for r in rows if r["judge_failed"]]
    assert "I cannot decide." in failed and "Rating: 6.5" in failed and "Rating: 5 ... on reflection Rating: 3" in failed
    assert all(r["score"] is not None for r in rows if r["judge_raw"] in ("Rating: 5", "Rating: 5. Rating: 5"))


def test_mmvet_official_prompt_and_aggregation_match_mm_vet_evaluator():
    from benchmarks.official import mmvet
    from harness.judges import templates

    golden = _golden("mmvet.json")
    tpl = templates.get("mmvet-official")
    rows = _judged_rows("mmvet.json", "mmvet", tpl.parse)
    assert tpl.build(rows[0]) == golden["official_first_prompt"]
    for cap, printed in golden["official_output"].items():
        value = mmvet.official_score(None if cap == "total" else cap)(rows)
        assert f"{round(value, 1):.1f}" == printed, cap
    assert {r["judge_raw"] for r in rows if r["judge_failed"]} == {"correct", "0.7.", ""}


def test_judge_templates_by_name_official_by_default_and_in_the_identity():
    from harness.errors import HarnessError
    from harness.judges.openai_judge import OpenAIJudge

    official = OpenAIJudge(base_url="http://127.0.0.1:9").describe()["templates"]
    ours = OpenAIJudge(base_url="http://127.0.0.1:9", templates="harness").describe()["templates"]
    assert official["mmhal"]["name"] == "mmhal-official" and ours["mmhal"]["name"] == "mmhal-harness"
    assert official["mmvet"]["hash"] != ours["mmvet"]["hash"]
    with pytest.raises(HarnessError, match="unknown judge template"):
        OpenAIJudge(base_url="http://127.0.0.1:9", templates={"mmhal": "mmhal-paper", "mmvet": "mmvet-official"})


def test_real_judged_suites_record_ours_and_the_official_value():
    """Through harness.evaluate: our score skips unreadable replies (counted failures), the official one scores
    them as its script does (0), so both the corrected and the paper-comparable number are in each record."""
    from benchmarks.suites import MMHAL, MMVET
    from harness.evaluate import metric_values
    from harness.judges import templates

    rows = _judged_rows("mmhal.json", "mmhal", templates.get("mmhal-official").parse)
    values = metric_values(MMHAL, rows)
    assert f"{values['official/score'].value:.2f}" == _golden("mmhal.json")["official_output"]["average_score"]
    assert values["official/score"].n == 96 and values["score"].n == sum(not r["judge_failed"] for r in rows) < 96
    official = _golden("mmhal.json")["official_output"]
    for qtype, printed in zip(official["per_type_order"], official["per_type"]):
        assert str(round(values[f"official/{qtype}/score"].value, 2)) == printed
    rows = _judged_rows("mmvet.json", "mmvet", templates.get("mmvet-official").parse)
    values = metric_values(MMVET, rows)
    assert f"{round(values['official/score'].value, 1):.1f}" == _golden("mmvet.json")["official_output"]["total"]
    assert values["official/score"].n == 24 and values["score"].n < 24


# ---------------------------------------------------------------- AMBER generative

AMBER_DATA = Path(__file__).resolve().parent / "golden" / "amber_g.json"


def _recorded_scorer(real_utils, association, safe):
    """AMBER's generative scorer on the nouns and similarity answers the official run recorded: the matching
    logic is checked exactly, whatever NLP resources this machine has. A pair the official run never asked
    about fails the test (the two algorithms would then differ in what they compare)."""
    from benchmarks.official.amber import GenerativeScorer

    golden = _golden("amber_g.json")

    def similar(a: str, b: str) -> bool:
        return golden["official_similarity"][f"{a}|{b}"]
    return GenerativeScorer(association, safe, lambda text: golden["official_nouns"][text], similar)


def _amber_resources():
    """relation.json + safe_words.txt: AMBER's data, committed beside the fixture only as far as it needs them."""
    data = _golden("amber_g_data.json")
    return data["relation"], data["safe_words"]


def test_amber_generative_matches_inference_py(real_utils):
    from benchmarks.suites import AMBER

    golden = _golden("amber_g.json")
    scorer = _recorded_scorer(real_utils, *_amber_resources())
    rows = [real_utils.amber_g_row({"id": it["id"], "truth": it["truth"], "hallu": it["hallu"]}, it["response"],
                                   scorer=scorer) for it in golden["items"]]
    values = AMBER.compute(rows)
    for ours, theirs in (("chair", "CHAIR"), ("cover", "Cover"), ("hal", "Hal"), ("cog", "Cog")):
        assert _printed(values[ours], golden["official_output"][theirs]) == golden["official_output"][theirs], ours


@pytest.mark.slow       # loading NLTK's tagger and WordNet takes ~20 s
def test_amber_nouns_match_the_official_extraction():
    """Our NLTK noun extraction on the fixture's responses gives the official run's nouns (needs NLTK's tagger,
    WordNet and Punkt data: skipped where they are not installed, docs/benchmarks.md § NLP resources)."""
    from benchmarks.official import nlp
    from harness.errors import HarnessError

    try:
        nlp.require_amber_nltk()
    except HarnessError as e:
        pytest.skip(str(e))
    for text, nouns in _golden("amber_g.json")["official_nouns"].items():
        assert nlp.amber_nouns(text) == nouns, text


def test_amber_generative_refuses_without_its_resources(real_utils, monkeypatch, tmp_path):
    from harness.errors import HarnessError

    monkeypatch.setattr(real_utils, "AMBER_RELATION", tmp_path / "relation.json")
    real_utils._AMBER_SCORER.clear()
    with pytest.raises(HarnessError, match="relation.json"):
        real_utils.amber_g_doc_to_text({"id": 1})


def test_amber_score_from_the_printed_chair_and_f1(real_utils):
    from benchmarks.suites import AMBER

    golden = _golden("amber_g.json")
    scorer = _recorded_scorer(real_utils, *_amber_resources())
    rows = [real_utils.amber_g_row({"id": it["id"], "truth": it["truth"], "hallu": it["hallu"]}, it["response"],
                                   scorer=scorer) for it in golden["items"]] + _amber_d_rows(real_utils)
    chair, f1 = float(golden["official_output"]["CHAIR"]), float(_golden("amber_d.json")["official_output"]["all"]["f1"])
    assert AMBER.compute(rows)["amber_score"] == pytest.approx(((100 - chair) + f1) / 2, abs=1e-9)


@pytest.mark.slow       # lmms-eval builds the task (~10 s)
def test_unknown_amber_type_stops_lmms_eval_before_any_answer(tmp_path):
    """Through lmms-eval itself: every prompt is built (doc_to_text) before the model generates, so a document
    with a type AMBER does not have fails there and generate_until is never called."""
    import shutil

    from harness.errors import HarnessError
    from harness.lmms_adapter import HarnessVLM, run_tasks

    folder = tmp_path / "real"
    (folder / "data").mkdir(parents=True)
    for name in ("harness_amber_d.yaml", "utils.py"):
        shutil.copy2(REAL / name, folder / name)
    from PIL import Image
    Image.new("RGB", (32, 32)).save(folder / "data" / "x.jpg")
    docs = [{"id": 1005, "image": "x.jpg", "query": "Is there a dog?", "truth": "no",
             "type": "discriminative-hallucination"},
            {"id": 1006, "image": "x.jpg", "query": "Is there a cat?", "truth": "no", "type": "existence"}]
    (folder / "data" / "amber_d.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    generated = []

    class Recorder(HarnessVLM):
        def generate_until(self, requests):
            generated.append(len(requests))
            return ["No"] * len(requests)
    with pytest.raises(HarnessError, match="unknown AMBER discriminative type 'existence'"):
        run_tasks(Recorder(model=object(), processor=object()), ["harness_amber_d"], include_path=folder)
    assert generated == []


def test_nlp_status_names_what_is_missing(capsys):
    from benchmarks.official import nlp

    assert nlp.main(["--spacy-model", "no_such_spacy_model"]) == 1
    out = capsys.readouterr().out
    assert "spacy:no_such_spacy_model: missing" in out and "punkt_tab:" in out


@pytest.mark.slow       # needs spaCy and en_core_web_md 3.8.0, the model the fixture's official run used
def test_amber_similarity_matches_the_official_answers():
    from benchmarks.official import nlp
    from harness.errors import HarnessError

    name = os.environ.get("HARNESS_AMBER_TEST_SPACY_MODEL", "en_core_web_md")   # a name or a model folder
    try:
        model = nlp.spacy_model(name)
    except HarnessError as e:
        pytest.skip(str(e))
    if model.meta.get("version") != "3.8.0":
        pytest.skip(f"{name} is {model.meta.get('version')}, the fixture was made with en_core_web_md 3.8.0")
    similar = nlp.similarity_test(name, 0.8)
    for pair, answer in _golden("amber_g.json")["official_similarity"].items():
        assert similar(*pair.split("|")) == answer, pair
