"""LLM-written prompts (stage 0) and questions, through the judge's OpenAI-compatible client.

The paper had a GPT-4-family model write the text-to-image prompts, by category (docs/recipe.md), and the
questions. Here the same client as the judge (harness.judges.openai_judge: endpoint $HARNESS_JUDGE_URL, model
$HARNESS_JUDGE_MODEL unless the config names one, key in $OPENAI_API_KEY, never written anywhere) asks for them.

Every request's reply is cached under (endpoint, model, request text) in $HARNESS_CACHE_DIR/llm, so a re-run
costs nothing and gets the same prompts. Prompts are asked for in batches per category ("batch k" is part of the
request, so each batch is a new request), deduplicated case- and space-insensitively across all categories; a
reply with no usable line is a bad reply: counted, not cached, asked again. A category that still falls short
after `max_requests` is a HarnessError naming the counts -- never silently fewer prompts than asked.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import HarnessError
from harness.io import stable_hash, write_json

# the paper's 15 prompt categories (docs/recipe.md)
PAPER_CATEGORIES = ("art", "industrial", "nature", "transport", "urban", "school", "holiday", "weather", "daily",
                    "culinary", "home", "scifi", "animal", "plant", "fashion")
PROMPT_REQUEST = ("Write {k} different text-to-image prompts for photographs or pictures in the category "
                  "\"{category}\" (batch {batch}). Each prompt is one sentence describing a concrete scene: its "
                  "objects, their colours, counts and positions. Reply with one prompt per line, nothing else.")
QUESTION_REQUEST = ("An image was generated from this prompt: \"{prompt}\". Write one question or instruction a "
                    "user could ask an assistant about this image (attempt {attempt}). Reply with the question "
                    "only, on one line.")
_NUMBERING = re.compile(r"^\s*(?:[-*•]|\d+[.):])\s*")


@dataclass
class LLMStats:
    requests: int = 0
    cached: int = 0
    bad_replies: int = 0
    duplicates: int = 0
    errors: list[str] = field(default_factory=list)


class LLMClient:
    """complete(request) -> reply text, cached; HTTP, retries and the key are the judge client's."""

    def __init__(self, model: str = "", url: str = ""):
        from harness.judges.openai_judge import OpenAIJudge
        self.http = OpenAIJudge(base_url=url or None, model=model or None, max_tokens=1024)
        from harness.io import cache_dir
        self.root = cache_dir() / "llm"
        self.stats = LLMStats()

    def describe(self) -> dict:
        return {"base_url": self.http.base_url, "model": self.http.model}

    def _path(self, request: str) -> Path:
        key = stable_hash({"endpoint": self.http.base_url, "model": self.http.model, "request": request}, length=32)
        return self.root / key[:2] / f"{key}.json"

    def ask(self, request: str, accept) -> list[str] | None:
        """The reply's accepted items (`accept(reply) -> list`, empty = a bad reply, not cached) or None."""
        path = self._path(request)
        if path.is_file():
            self.stats.cached += 1
            return accept(json.loads(path.read_text(encoding="utf-8"))["reply"])
        self.stats.requests += 1
        reply, error = self.http.complete(request)
        if reply is None:
            self.stats.errors.append(error)
            if len(self.stats.errors) >= 3 and self.stats.requests == len(self.stats.errors):
                raise HarnessError(f"the LLM at {self.http.base_url} does not answer: {error}")
            return None
        items = accept(reply)
        if not items:
            self.stats.bad_replies += 1
            return None
        write_json(path, {"endpoint": self.http.base_url, "model": self.http.model, "reply": reply})
        return items


def prompt_lines(reply: str) -> list[str]:
    """Usable prompts of a reply: one per line, list numbering removed, 4..80 words."""
    out = []
    for line in reply.splitlines():
        text = _NUMBERING.sub("", line).strip().strip('"').strip()
        if 4 <= len(text.split()) <= 80:
            out.append(text)
    return out


def _enough(lines: list[str], asked: int) -> list[str]:
    """A reply is usable when at least half the prompts asked for came back (a refusal or chatter is not)."""
    return lines if len(lines) >= max(1, asked // 2) else []


def write_prompts(n: int, categories=None, model: str = "", per_request: int = 25, seed: int = 0,
                  max_requests: int | None = None, url: str = "") -> list[dict]:
    """n {"category", "prompt"} rows, spread evenly over the categories (the first n % len get one more)."""
    cats = list(categories or PAPER_CATEGORIES)
    client = LLMClient(model, url)
    print(f"prompts: asking {client.describe()['model']} at {client.describe()['base_url']} for {n} prompts in "
          f"{len(cats)} categories", file=sys.stderr)
    want = {c: n // len(cats) + (1 if i < n % len(cats) else 0) for i, c in enumerate(cats)}
    seen: set[str] = set()
    rows: list[dict] = []
    for cat in cats:
        got, batch = [], 0
        limit = max_requests or 3 * (want[cat] // max(1, per_request) + 1) + 3
        while len(got) < want[cat] and batch < limit:
            items = client.ask(PROMPT_REQUEST.format(k=per_request, category=cat, batch=f"{seed}-{batch}"),
                               lambda reply: _enough(prompt_lines(reply), per_request)) or []
            batch += 1
            for text in items:
                key = " ".join(text.lower().split())
                if key in seen:
                    client.stats.duplicates += 1
                    continue
                seen.add(key)
                got.append(text)
        if len(got) < want[cat]:
            s = client.stats
            raise HarnessError(f"the LLM ({client.describe()['model']} at {client.describe()['base_url']}) gave "
                               f"{len(got)} of {want[cat]} prompts for category {cat!r} after {batch} requests "
                               f"({s.bad_replies} bad replies, {s.duplicates} duplicates)")
        rows += [{"category": cat, "prompt": t} for t in got[:want[cat]]]
    s = client.stats
    print(f"prompts: {len(rows)} written by {client.describe()['model']} at {client.describe()['base_url']} "
          f"({s.requests} requests, {s.cached} cached, {s.bad_replies} bad replies retried, {s.duplicates} "
          "duplicates dropped)", file=sys.stderr)
    return rows


def question_line(reply: str) -> list[str]:
    lines = [_NUMBERING.sub("", x).strip().strip('"').strip() for x in reply.splitlines() if x.strip()]
    ok = len(lines) == 1 and 3 <= len(lines[0].split()) <= 60 and lines[0][-1] in "?."
    return lines[:1] if ok else []


_CLIENTS: dict[tuple[str, str], LLMClient] = {}


def write_question(prompt: str, model: str = "", attempts: int = 4, url: str = "") -> str:
    """One question about the image of `prompt`; a bad reply is retried (a new attempt), then a HarnessError."""
    if (model, url) not in _CLIENTS:
        _CLIENTS[(model, url)] = LLMClient(model, url)
    client = _CLIENTS[(model, url)]
    for attempt in range(attempts):
        got = client.ask(QUESTION_REQUEST.format(prompt=prompt, attempt=attempt), question_line)
        if got:
            return got[0]
    raise HarnessError(f"the LLM ({client.describe()['model']}) gave no usable question for prompt {prompt!r} "
                       f"in {attempts} attempts ({client.stats.bad_replies} bad replies so far)")
