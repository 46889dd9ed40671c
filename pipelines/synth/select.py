"""Stage 7 — pair selection from scored responses.

Paper rule: chosen = the highest-scoring response, rejected = the lowest; no margin, no tie handling.
Options here: `min_margin` (drop pairs whose score gap is smaller), `drop_ties` (drop equal scores or
identical texts), `length_control` (pick the rejected answer only among responses whose length is within
that relative difference of the chosen one, so DPO cannot learn "shorter/longer wins": the paper's rejected
answers were ~40–45 % "easy" fragments), `keep_largest_margin` (with more prompts than pairs (prompts.oversample),
keep the n pairs with the largest reward gap instead of the first n: a threshold that needs no scale, so it
means the same for the RM, CLIP, random or ground-truth scores), `reject_malformed_first` (pick the rejected
answer among the responses that fail the well-formed check when there are any: a rule-based format preference
on top of the reward model, so the pairs name the degenerate or repeating answer as the one to avoid even when
the reward model ranks a merely wrong answer lower). Always: the chosen answer must be well-formed
(docs/micro-world.md: a scorer that never sees repetition teaches the policy to repeat).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.errors import HarnessError

_TOK = re.compile(r"\w+|[^\w\s]")


@dataclass
class SelectConfig:
    min_margin: float = 0.0
    drop_ties: bool = True
    length_control: float = 0.0        # 0 = off; else max |len_c - len_r| / max(len_c, len_r)
    require_well_formed: bool = True
    keep_largest_margin: bool = False  # else the first n pairs in prompt order
    reject_malformed_first: bool = False


def n_tokens(text: str) -> int:
    return len(_TOK.findall(text or ""))


def well_formed(text: str, world: str) -> bool:
    """micro: the world's own check (ends with '.', no triple repeats, no object named twice, bounded).
    real: non-empty and no word three times in a row (harness.world.texts.degeneration's real-world check)."""
    from harness.world.texts import degeneration, is_well_formed
    if world == "micro":
        return is_well_formed(text)
    return degeneration(text, "real") is None


def select_pair(cfg: SelectConfig, responses: list[dict], scores: list[float], world: str
                ) -> tuple[dict | None, str]:
    """-> (pair or None, reason). pair = {"chosen", "rejected", "chosen_score", "rejected_score", ...}."""
    if len(responses) < 2:
        return None, "fewer than 2 responses"
    idx = list(range(len(responses)))
    eligible = [i for i in idx if well_formed(responses[i]["text"], world)] if cfg.require_well_formed else idx
    eligible = [i for i in eligible if responses[i]["text"].strip()]
    if not eligible:
        return None, "no well-formed response"
    c = max(eligible, key=lambda i: (scores[i], -i))
    pool = [i for i in idx if i != c]
    if cfg.length_control > 0:
        lc = n_tokens(responses[c]["text"])
        pool = [i for i in pool
                if abs(n_tokens(responses[i]["text"]) - lc) <= cfg.length_control * max(lc, n_tokens(responses[i]["text"]), 1)]
        if not pool:
            return None, "no rejected candidate within the length control"
    if cfg.reject_malformed_first:
        malformed = [i for i in pool if not well_formed(responses[i]["text"], world)]
        pool = malformed or pool
    r = min(pool, key=lambda i: (scores[i], i))
    margin = scores[c] - scores[r]
    if cfg.drop_ties and (margin <= 0 or responses[c]["text"].strip() == responses[r]["text"].strip()):
        return None, "tie"
    if margin < cfg.min_margin:
        return None, "margin below min_margin"
    return {"chosen": responses[c]["text"], "rejected": responses[r]["text"],
            "chosen_score": scores[c], "rejected_score": scores[r],
            "chosen_model": responses[c]["model"], "rejected_model": responses[r]["model"]}, "kept"


def select_pairs(cfg: SelectConfig, items: list[dict], world: str, n_pairs: int | None) -> tuple[list[dict], dict]:
    """items: {"id", "question", "responses", "scores", ...} -> (pairs, counts by reason), first n_pairs kept."""
    pairs, reasons = [], {}
    empty = total = 0
    for it in items:
        total += len(it["responses"])
        empty += sum(1 for r in it["responses"] if not r["text"].strip())
        pair, why = select_pair(cfg, it["responses"], it["scores"], world)
        reasons[why] = reasons.get(why, 0) + 1
        if pair is not None:
            pairs.append({**{k: v for k, v in it.items() if k not in ("responses", "scores")}, **pair})
    if total and empty == total:
        raise HarnessError(f"every one of the {total} responses is empty: the responder models produced no text "
                           "(check responders.models and responders.max_new_tokens)")
    if n_pairs is not None and len(pairs) < n_pairs:
        raise HarnessError(f"only {len(pairs)} of the requested {n_pairs} pairs survived selection from "
                           f"{len(items)} prompts (dropped: {', '.join(f'{k}={v}' for k, v in sorted(reasons.items()) if k != 'kept') or 'none'}); "
                           "raise prompts.oversample or relax select.* options")
    if n_pairs is not None and cfg.keep_largest_margin and len(pairs) > n_pairs:
        # a stable sort: equal gaps keep prompt order, so the kept set is deterministic
        keep = sorted(range(len(pairs)), key=lambda i: -(pairs[i]["chosen_score"] - pairs[i]["rejected_score"]))
        kept = sorted(keep[:n_pairs])
        reasons["smaller margin than the kept pairs"] = len(pairs) - n_pairs
        pairs = [pairs[i] for i in kept]
    return (pairs[:n_pairs] if n_pairs is not None else pairs), {"reasons": reasons, "empty_responses": empty,
                                                                 "responses": total}
