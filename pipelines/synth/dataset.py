"""Stage 8 — the preference dataset in TRL's format, with a dataset card.

Rows are conversational (TRL DPOTrainer's vision format): `images` = [PIL], `prompt` = [user turn with
{"type": "image"} and the question], `chosen` / `rejected` = [assistant turn]. Saved with
`datasets.Dataset.save_to_disk`; the card (README.md + card.json) holds counts, reward and length statistics
of chosen vs rejected, and the components used.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from harness.io import write_json, write_text
from pipelines.synth.select import n_tokens


def to_trl_row(image, question: str, chosen: str, rejected: str) -> dict:
    return {"images": [image],
            "prompt": [{"role": "user", "content": [{"type": "image", "text": None},
                                                   {"type": "text", "text": question}]}],
            "chosen": [{"role": "assistant", "content": [{"type": "text", "text": chosen}]}],
            "rejected": [{"role": "assistant", "content": [{"type": "text", "text": rejected}]}]}


def _stats(xs: list[float]) -> dict:
    if not xs:
        return {"mean": None, "sd": None, "min": None, "max": None}
    return {"mean": round(statistics.fmean(xs), 4), "sd": round(statistics.pstdev(xs), 4),
            "min": round(min(xs), 4), "max": round(max(xs), 4)}


def card_summary(pairs: list[dict], selection: dict, components: dict) -> dict:
    cs = [p["chosen_score"] for p in pairs]
    rs = [p["rejected_score"] for p in pairs]
    cl = [n_tokens(p["chosen"]) for p in pairs]
    rl = [n_tokens(p["rejected"]) for p in pairs]
    kinds: dict[str, int] = {}
    sources: dict[str, int] = {}
    for p in pairs:
        kinds[p.get("kind", "")] = kinds.get(p.get("kind", ""), 0) + 1
        key = f"{p['chosen_model']} > {p['rejected_model']}"
        sources[key] = sources.get(key, 0) + 1
    return {"pairs": len(pairs), "selection": selection, "components": components,
            "reward": {"chosen": _stats(cs), "rejected": _stats(rs),
                       "margin": _stats([c - r for c, r in zip(cs, rs)])},
            "length_tokens": {"chosen": _stats(cl), "rejected": _stats(rl),
                              "chosen_longer_share": round(sum(c > r for c, r in zip(cl, rl)) / max(1, len(pairs)), 4)},
            "question_kinds": dict(sorted(kinds.items())), "pair_sources": dict(sorted(sources.items()))}


def card_markdown(summary: dict, title: str) -> str:
    r, ln = summary["reward"], summary["length_tokens"]
    lines = [f"# {title}", "", "Preference pairs in TRL's conversational vision format "
             "(`images`, `prompt`, `chosen`, `rejected`), written by `harness synth`.", "",
             f"- pairs: {summary['pairs']}",
             f"- selection: {summary['selection']}", "", "## Components", ""]
    lines += [f"- **{k}**: {v}" for k, v in summary["components"].items()]
    lines += ["", "## Chosen vs rejected", "", "| | chosen | rejected |", "|---|---|---|",
              f"| reward mean (sd) | {r['chosen']['mean']} ({r['chosen']['sd']}) | {r['rejected']['mean']} ({r['rejected']['sd']}) |",
              f"| length mean (sd), tokens | {ln['chosen']['mean']} ({ln['chosen']['sd']}) | {ln['rejected']['mean']} ({ln['rejected']['sd']}) |",
              "", f"Reward margin: mean {r['margin']['mean']}, min {r['margin']['min']}. "
              f"Chosen longer than rejected in {ln['chosen_longer_share']:.0%} of pairs.", "",
              f"Question kinds: {summary['question_kinds']}", "", f"Pair sources (chosen > rejected): {summary['pair_sources']}", ""]
    return "\n".join(lines)


def write_dataset(pairs: list[dict], images: dict, out_dir: Path, selection: dict, components: dict,
                  title: str) -> dict:
    """Save the TRL dataset to out_dir/dataset and its card; `images` maps pair id -> PIL image."""
    from datasets import Dataset, Features, Image, List, Value

    msg = List({"role": Value("string"), "content": List({"type": Value("string"), "text": Value("string")})})
    features = Features({"id": Value("int64"), "images": List(Image()), "prompt": msg, "chosen": msg,
                         "rejected": msg})
    rows = [{"id": p["id"], **to_trl_row(images[p["id"]], p["question"], p["chosen"], p["rejected"])} for p in pairs]
    ds = Dataset.from_list(rows, features=features)
    ds.save_to_disk(str(out_dir / "dataset"))
    summary = card_summary(pairs, selection, components)
    write_json(out_dir / "dataset" / "card.json", summary)
    write_text(out_dir / "dataset" / "README.md", card_markdown(summary, title))
    return summary
