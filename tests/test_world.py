"""Micro world: determinism, train/eval disjointness, generator defect rates, text parsers."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest

from harness.errors import HarnessError
from harness.world import texts
from harness.world.generator import defect_rates, generate_candidates, prompt_text
from harness.world.render import CLASS_LOOK, render
from harness.world.scene import CLASSES, Obj, Scene, make_scene, sample_scenes


def test_render_is_deterministic_and_seed_dependent():
    scene = sample_scenes(1, "train", 3)[0]
    a, b = np.asarray(render(scene, 5)), np.asarray(render(scene, 5))
    assert a.shape == (64, 64, 3) and a.dtype == np.uint8
    assert (a == b).all()
    assert (a != np.asarray(render(scene, 6))).any()


def test_render_differs_by_class_colour_and_size():
    def img(cls, color="red", size="big"):
        return np.asarray(render(make_scene("kitchen", [Obj(cls, color, size, (0, 0))]), 0)).astype(int)
    base = img("cup")
    for other in ("fork", "plate", "dog"):
        assert np.abs(base - img(other)).sum() > 20000
    assert np.abs(base - img("cup", "blue")).sum() > 20000
    assert np.abs(base - img("cup", size="small")).sum() > 20000
    assert len({s for s, _ in CLASS_LOOK.values()}) == len({t for _, t in CLASS_LOOK.values()}) == len(CLASSES)


def test_sign_digit_changes_the_image():
    def ink(digit):   # near-black pixels: only the glyph is drawn that dark
        img = np.asarray(render(make_scene("street", [Obj("sign", "red", "big", (1, 1), digit)]), 0))
        return int((img.max(axis=2) < 40).sum())
    # Glyph cells x scale 2 x 2: "1" has 8 ink cells -> 32 px, "8" has 13 -> 52 px.
    assert ink("1") == 32 and ink("8") == 52


def test_sampling_is_deterministic():
    assert [s.key() for s in sample_scenes(50, "train", 1)] == [s.key() for s in sample_scenes(50, "train", 1)]
    assert [s.key() for s in sample_scenes(50, "train", 1)] != [s.key() for s in sample_scenes(50, "train", 2)]


def test_train_and_eval_are_disjoint_by_content():
    train = {s.key() for seed in (0, 1) for s in sample_scenes(2000, "train", seed)}
    evals = {s.key() for seed in (0, 7) for s in sample_scenes(1000, "eval", seed)}
    assert train.isdisjoint(evals)
    # The split is a pure function of content: a reconstructed scene lands in the same split.
    for s in sample_scenes(200, "eval", 3):
        assert Scene.from_dict(s.to_dict()).split == "eval"


def test_generator_defects_move_with_guidance():
    scenes = sample_scenes(150, "train", 11)
    counts: dict[int, Counter] = {g: Counter() for g in (5, 7, 9, 11)}
    for i, s in enumerate(scenes):
        for c in generate_candidates(s, 8, seed=i):
            counts[c.guidance].update(d.split(":")[0] for d in c.defects)
            assert c.scene.split == "train"
    assert counts[5]["missing"] > counts[7]["missing"] > counts[9]["missing"] > counts[11]["missing"]
    assert counts[5]["recolor"] > counts[11]["recolor"]
    assert counts[11]["extra"] > 2 * counts[7]["extra"]
    assert counts[11]["artefact"] > counts[9]["artefact"] > counts[7]["artefact"] == 0
    # The best guidance is in the middle: the highest guidance is not the cleanest.
    total = {g: sum(c.values()) for g, c in counts.items()}
    assert min(total, key=total.get) in (9, 11) and total[5] == max(total.values())
    assert defect_rates(11)["extra"] > defect_rates(5)["extra"]


def test_generator_is_deterministic_and_refuses_eval_prompts():
    s = sample_scenes(1, "train", 0)[0]
    a, b = generate_candidates(s, 4, 3), generate_candidates(s, 4, 3)
    assert [c.scene.key() for c in a] == [c.scene.key() for c in b]
    assert all((np.asarray(x.image) == np.asarray(y.image)).all() for x, y in zip(a, b))
    assert a[0].prompt == prompt_text(s) and prompt_text(s).startswith("a photo of")
    with pytest.raises(HarnessError):
        generate_candidates(sample_scenes(1, "eval", 0)[0], 2, 0)


def test_describe_caption_and_questions():
    s = make_scene("kitchen", [Obj("cup", "red", "small", (0, 0)), Obj("fork", "blue", "big", (1, 1))])
    assert texts.describe(s) == ("there is a small red cup on the top left and a big blue fork on the bottom "
                                 "right .")
    assert texts.mentioned_objects(texts.describe(s)) == ["cup", "fork"]
    rng = random.Random(0)
    noisy = [texts.caption(s, rng, 1.0) for _ in range(20)]
    assert all(set(texts.mentioned_objects(c)) - {"cup", "fork"} <= {"plate", "bottle"} for c in noisy)
    assert all(len(texts.mentioned_objects(c)) == 3 for c in noisy)
    assert texts.caption(s, rng, 0.0) == texts.describe(s)
    assert texts.pope_question("cup") == "is there a cup in the image ?"
    assert texts.spatial_qa(s.objects[0], s.objects[1], "left of").answer == "yes ."
    assert texts.spatial_qa(s.objects[0], s.objects[1], "below").answer == "no ."
    qas = texts.sample_questions(s, random.Random(1))
    ex = [q for q in qas if q.kind == "existence"]
    assert len(ex) == 4 and Counter(q.answer for q in ex) == Counter({"yes .": 2, "no .": 2})
    sign = make_scene("street", [Obj("sign", "red", "big", (0, 0), "7")])
    assert texts.ocr_qa(sign.objects[0]).answer == "7 ."


def test_every_template_word_is_in_vocab():
    vocab = set(texts.VOCAB)
    rng = random.Random(0)
    for s in sample_scenes(100, "train", 0):
        strings = [texts.describe(s), texts.caption(s, rng, 0.5), prompt_text(s)]
        strings += [t for q in texts.sample_questions(s, rng) for t in (q.question, q.answer)]
        for t in strings:
            assert set(texts.tokenize(t)) <= vocab, t
    assert {"user", "assistant", ":"} <= vocab


@pytest.mark.parametrize("text,expected", [
    ("yes .", "yes"), ("Yes, there is a cup.", "yes"), ("no .", "no"), ("No", "no"),
    ("there is not a cup in the image .", "no"), ("there is no cup .", "no"),
    ("there is a cup . no other things", None), ("", None), ("the cup is red .", None),
    ("  YES!", "yes"),
])
def test_parse_yes_no(text, expected):
    assert texts.parse_yes_no(text) == expected


def test_mentioned_objects_and_well_formed():
    assert texts.mentioned_objects("two cups and a bus , buses .") == ["cup", "bus", "bus"]
    assert texts.is_well_formed("there is a small red cup on the top left .")
    assert not texts.is_well_formed("")
    assert not texts.is_well_formed("there is a red red red cup .")
    assert not texts.is_well_formed("there is a cup and a cup .")
    assert not texts.is_well_formed("there is a small red cup on the top left")
    assert not texts.is_well_formed(" ".join(["a big cup and"] * 20) + " .")
    # degeneration: breaking, not erring; a class named twice is well-formed-failing but not degenerate
    assert [texts.degeneration(t) for t in ("", "there is a cup cup cup .", "there is a red cup on the top",
                                            "there is a red cup on the .", "there is a cup and a cup .", "yes .")] == \
        ["empty", "loop", "unterminated", "truncated", None, None]
    # real-world free text: no final period and an ellipsis are fine; only empty answers and word loops break
    assert [texts.degeneration(t, "real") for t in ("A cup on a table", "Hmm... a cup.", "  ", "the the the cup")] == \
        [None, None, "empty", "loop"]
    assert texts.parse_number("three .") == 3 and texts.parse_number("7 .") == 7 and texts.parse_number("x") is None
