"""How much hallucination can preference alignment remove from a micro-world policy? A diagnostic, not a suite.

    python -m benchmarks.headroom [--policy micro-llava] [--images 2400] [--pairs 2000] [--out DIR]

Why it exists: rm-dpo, and even the ground-truth `oracle`, left micro-CHAIR CHAIRs where it was (issue 4). This
script separates the candidate causes in one run (~10 min on 2 CPU cores), on train-split scenes never used for
evaluation:

1. Candidates: the policy's greedy description vs descriptions sampled at each temperature, and the best of K
   samples picked by the ground truth and by the reward model. If the chosen answers hallucinate more than the
   greedy output the evaluation decodes, DPO is taught to imitate something worse than the policy already does.
2. Reward model: on pairs of the policy's own samples for one image, how often the RM prefers the one with fewer
   hallucinated objects, and the well-formed one (the pairs rm-dpo actually trains on).
3. Learnability controls: three trainings with the rm-dpo micro preset's DPO settings (`pipelines/presets/rm-dpo/
   _micro.yaml`, 3 epochs), each evaluated on micro-CHAIR against the base with the paired test the board uses:
   `ideal-pairs` (chosen = a sample with no hallucinated object and well-formed, rejected = one with a hallucination
   or malformed: a perfect reward model) and `sft-truth` (SFT on the world's true descriptions: supervision no
   preference pipeline can beat), plus `pruned-greedy` (chosen = the greedy description with its hallucinated
   phrases cut out, rejected = the greedy description: corrections that teach "name fewer objects" — it shows the
   recall price of lowering CHAIR by omission). If the first two do not move CHAIRs, the limit is the policy's
   perception, not the preference data: no method that trains the language model on this policy will lower
   hallucination without giving up recall.
4. The vision tower's own per-quadrant class accuracy (from the zoo card): the ceiling of what any readout of the
   frozen image features can name correctly.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path


def _absent_named(text: str, scene) -> set[str]:
    """Objects the text names that the scene does not hold."""
    from harness.world.texts import mentioned_objects
    return set(mentioned_objects(text)) - scene.classes


def _row(text: str, scene) -> dict:
    """A micro-CHAIR sample row, so the suite's own metrics (benchmarks.metrics) score it."""
    from harness.world.texts import is_well_formed, mentioned_objects
    return {"truth": sorted(scene.classes), "mentioned": mentioned_objects(text), "prediction": text,
            "well_formed": is_well_formed(text)}


def _stats(texts: list[str], scenes) -> dict:
    """CHAIRs, object recall and the well-formed share, computed by the micro-CHAIR suite's metric functions."""
    from benchmarks import metrics
    rows = [_row(t, s) for t, s in zip(texts, scenes)]
    return {"chair_s": round(metrics.chair_s(rows), 3), "recall": round(metrics.object_recall(rows), 3),
            "well_formed": round(metrics.well_formed_rate(rows), 3)}


def _recall(text: str, scene) -> float:
    from benchmarks import metrics
    return metrics.object_recall([_row(text, scene)])


def _clean(text: str, scene) -> bool:
    from harness.world.texts import is_well_formed
    return is_well_formed(text) and not _absent_named(text, scene)


def _without_hallucinated(text: str, scene) -> str | None:
    """The description with its phrases that name an absent object removed (the world's "there is P and P ."
    shape) — a fine-grained correction like RLHF-V's; None when nothing is left or nothing was wrong."""
    if not (text.startswith("there is ") and text.endswith(" .")):
        return None
    phrases = text.removeprefix("there is ").removesuffix(" .").split(" and ")
    keep = [p for p in phrases if not _absent_named(p, scene)]
    if not keep or len(keep) == len(phrases):
        return None
    return "there is " + " and ".join(keep) + " ."


def _rm_pair_accuracy(samples: list[list[str]], scores: list[list[float]], scenes) -> dict:
    """Same-image sample pairs: does the RM prefer fewer hallucinated objects (both well-formed) / well-formed?

    The hallucination pairs are also split by whether both answers name as many objects (the difference is a
    misreading of an object that is there) or not (an invented extra object, or one left out)."""
    from harness.world.texts import is_well_formed, mentioned_objects
    wins = {"fewer_hallucinated": [0, 0], "well_formed": [0, 0],
            "fewer_hallucinated_same_count": [0, 0], "fewer_hallucinated_other_count": [0, 0]}
    for texts, rs, scene in zip(samples, scores, scenes):
        info = [(len(_absent_named(t, scene)), is_well_formed(t), r, len(mentioned_objects(t)))
                for t, r in zip(texts, rs)]
        for i in range(len(info)):
            for j in range(i + 1, len(info)):
                (ha, wa, ra, na), (hb, wb, rb, nb) = info[i], info[j]
                if wa and wb and ha != hb:
                    keys, better_a = ("fewer_hallucinated", "fewer_hallucinated_" +
                                      ("same_count" if na == nb else "other_count")), ha < hb
                elif wa != wb and ha == hb:
                    keys, better_a = ("well_formed",), wa
                else:
                    continue
                for key in keys:
                    wins[key][0] += (ra > rb) == better_a
                    wins[key][1] += 1
    return {k: {"accuracy": round(w / n, 3) if n else None, "pairs": n} for k, (w, n) in wins.items()}


def _train_and_eval(name: str, pairs: list[dict], images: dict, train_cfg, policy: str, out: Path, base_dir: Path,
                    loss: list[str]) -> dict:
    import dataclasses

    from harness.compare import compare_suite
    from harness.evaluate import evaluate_checkpoint, load_samples, resolve_suites
    from pipelines.dpo import train_dpo
    from pipelines.synth.dataset import write_dataset
    d = out / name
    write_dataset(pairs, images, d, {"rule": name}, {"script": "benchmarks.headroom"}, f"headroom {name}")
    cfg = dataclasses.replace(train_cfg, epochs=3.0, loss_type=loss,
                              loss_weights=None if len(loss) == 1 else train_cfg.loss_weights)
    t0 = time.time()
    summary = train_dpo(cfg, base=policy, dataset_dir=d / "dataset", out_dir=d, seed=0, label=name)
    evaluate_checkpoint(policy, adapter=str(d / "adapter"), suites=["micro-chair"], out_dir=str(d / "eval"),
                        checkpoint="aligned", batch_size=128)
    suite = resolve_suites(["micro-chair"])[0]
    cmp = compare_suite(suite, load_samples(base_dir, "base", suite.name), load_samples(d / "eval", "aligned", suite.name))
    return {"pairs": len(pairs), "steps": summary["steps"], "final_loss": round(summary["final_loss"], 4),
            "seconds": round(time.time() - t0, 1),
            **{m: {"delta": round(c.delta, 4), "p": None if c.p_value is None else round(c.p_value, 4)}
               for m, c in cmp.items() if m in ("chair_s", "chair_i", "recall", "well_formed")}}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--policy", default="micro-llava")
    ap.add_argument("--images", type=int, default=2400, help="train-split scenes to sample on")
    ap.add_argument("--samples", type=int, default=8, help="K sampled descriptions per image and temperature")
    ap.add_argument("--temperatures", default="1.0,0.7")
    ap.add_argument("--pairs", type=int, default=2000, help="pairs per learnability control (0 = skip them)")
    ap.add_argument("--out", default="runs/headroom")
    args = ap.parse_args(argv)

    import torch

    from harness.api import prepare
    from harness.io import write_json
    from harness.models.vlm import load_vlm
    from harness.world import texts
    from harness.world.render import render
    from harness.world.scene import sample_scenes
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    _, _, cfg, _, _, _ = prepare("rm-dpo", "2k")              # the micro preset's selection and DPO settings
    scenes = sample_scenes(args.images, "train", 90_001)       # a seed no zoo or synthesis stage uses
    images = [render(s, 0) for s in scenes]
    question = texts.describe_qa(scenes[0]).question
    model, proc = load_vlm(args.policy)
    result, greedy, sampled = _candidates(args, cfg, model, proc, scenes, images, question)
    if args.pairs > 0:
        result["controls"] = _controls(args, cfg, out, scenes, images, question, greedy, sampled[min(sampled)])
    result["seconds"] = round(time.time() - t0, 1)
    write_json(out / "headroom.json", result)
    print(f"\nwrote {out / 'headroom.json'} ({result['seconds']} s)")
    return result


def _candidates(args, cfg, model, proc, scenes, images, question) -> tuple[dict, list[str], dict]:
    """What the policy's own samples hold at each temperature, and what rm-dpo's selection keeps of them."""
    from tabulate import tabulate

    from harness.models.reward import load_reward_model
    from harness.models.vlm import generate, resolve_checkpoint
    from pipelines.synth.select import select_pair
    questions = [question] * len(scenes)
    greedy = generate(model, proc, images, questions, max_new_tokens=40, batch_size=128)
    rm = load_reward_model("micro-rm")
    rows = [{"candidates": "greedy (what the evaluation decodes)", **_stats(greedy, scenes)}]
    rm_acc, sampled = {}, {}
    for temp in [float(t) for t in args.temperatures.split(",")]:
        samples = [generate(model, proc, images, questions, max_new_tokens=40, batch_size=128, temperature=temp,
                            seed=7919 * k) for k in range(args.samples)]
        per_image = [[samples[k][i] for k in range(args.samples)] for i in range(len(scenes))]
        flat = [t for group in per_image for t in group]
        flat_scores = rm.score([im for im in images for _ in range(args.samples)], [question] * len(flat), flat,
                               batch_size=128)
        scores = [flat_scores[i * args.samples:(i + 1) * args.samples] for i in range(len(scenes))]
        best_gt = [max(g, key=lambda t: (_clean(t, s), _recall(t, s))) for g, s in zip(per_image, scenes)]
        # rm-dpo's own selection rule and preset options (chosen = best well-formed, rejected = worst, ties dropped)
        kept = [(select_pair(cfg.synth.select, [{"text": t, "model": "policy"} for t in g], r, "micro")[0], s)
                for g, r, s in zip(per_image, scores, scenes)]
        kept = [(pair, s) for pair, s in kept if pair is not None]
        kept_scenes = [s for _, s in kept]
        rows += [{"candidates": f"one sample, T={temp}", **_stats(samples[0], scenes)},
                 {"candidates": f"best of {args.samples} by ground truth, T={temp}", **_stats(best_gt, scenes)},
                 {"candidates": f"rm-dpo chosen (micro-rm, {len(kept)} pairs kept), T={temp}",
                  **_stats([p["chosen"] for p, _ in kept], kept_scenes)},
                 {"candidates": f"rm-dpo rejected (micro-rm), T={temp}", **_stats([p["rejected"] for p, _ in kept], kept_scenes)}]
        rm_acc[f"T={temp}"] = _rm_pair_accuracy(per_image, scores, scenes)
        sampled[temp] = per_image
    print(tabulate(rows, headers="keys", tablefmt="github"))
    print("\nmicro-rm on same-image sample pairs:", json.dumps(rm_acc))
    card_file = resolve_checkpoint(args.policy) / "card.json"
    vision = (json.loads(card_file.read_text()) if card_file.is_file() else {}).get("vision_pretraining", {})
    print(f"vision tower probe (eval scenes): quadrant class accuracy {vision.get('quadrant_class_acc')}, "
          f"presence {vision.get('presence_acc')}")
    result = {"policy": args.policy, "images": len(scenes), "samples": args.samples, "candidates": rows,
              "rm_pair_accuracy": rm_acc, "vision_probe": vision, "controls": {}}
    return result, greedy, sampled


def _controls(args, cfg, out: Path, scenes, images, question, greedy, coolest) -> dict:
    """Learnability controls: DPO on ideal pairs, SFT on the truth, pruned greedy answers (coolest temperature)."""
    from tabulate import tabulate

    from harness.evaluate import evaluate_checkpoint
    from harness.world import texts
    ideal, truth, pruned = [], [], []
    by_id = {}
    for i, (s, group) in enumerate(zip(scenes, coolest)):
        good = [t for t in group if _clean(t, s)]
        bad = [t for t in [greedy[i]] + group if not _clean(t, s)]
        if not bad:
            continue
        row = {"id": i, "question": question, "kind": "describe", "chosen_score": 1.0, "rejected_score": 0.0,
               "chosen_model": "policy", "rejected_model": "policy", "rejected": bad[0]}
        by_id[i] = images[i]
        truth.append({**row, "chosen": texts.describe(s), "chosen_model": "ground truth"})
        if good:
            ideal.append({**row, "chosen": max(good, key=lambda t: _recall(t, s))})
        fixed = _without_hallucinated(greedy[i], s)
        if fixed is not None:
            pruned.append({**row, "chosen": fixed, "rejected": greedy[i], "chosen_model": "correction"})
    base_dir = out / "base"
    evaluate_checkpoint(args.policy, suites=["micro-chair"], out_dir=str(base_dir), checkpoint="base",
                        batch_size=128)
    controls = {}
    for name, pairs, loss in (("ideal-pairs", ideal, list(cfg.train.loss_type)), ("sft-truth", truth, ["sft"]),
                              ("pruned-greedy", pruned, list(cfg.train.loss_type))):
        controls[name] = _train_and_eval(name, pairs[:args.pairs], by_id, cfg.train, args.policy, out, base_dir,
                                         loss)
    print("\nlearnability controls (3 epochs, rm-dpo micro preset LoRA/lr; micro-CHAIR, aligned - base, "
          "paired bootstrap):")
    print(tabulate([{"control": k, **{m: f"{v[m]['delta']:+.3f} (p {v[m]['p']})" for m in
                                      ("chair_s", "chair_i", "recall", "well_formed")},
                     "pairs": v["pairs"], "final loss": v["final_loss"]} for k, v in controls.items()],
                   headers="keys", tablefmt="github"))
    return controls


if __name__ == "__main__":
    main()
