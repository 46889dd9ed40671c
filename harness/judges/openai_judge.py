"""A judge behind any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, llama.cpp server, ...).

Configuration: base URL (argument, else $HARNESS_JUDGE_URL, else $OPENAI_BASE_URL, else api.openai.com/v1),
model (argument, else $HARNESS_JUDGE_MODEL, else gpt-4o-2024-08-06), key read from the environment variable named
by `api_key_env` (default OPENAI_API_KEY; a local server may need none) and never written anywhere.
Retries with exponential backoff (0.5 s, 1 s, 2 s, ...) on timeouts, connection errors, HTTP 429 and 5xx; other
HTTP errors fail at once. The per-request timeout and the number of retries are arguments, else
$HARNESS_JUDGE_TIMEOUT (seconds) and $HARNESS_JUDGE_RETRIES: with the defaults (60 s, 3 retries) a hanging
endpoint costs 4 minutes per item before the third failure declares it down; `HARNESS_JUDGE_TIMEOUT=2
HARNESS_JUDGE_RETRIES=0` declares it down in seconds (docs/integrity.md: 6.1 s measured).
Replies are cached on disk under a hash of (endpoint, judge model, prompt-template version, prompt), so a re-run
or a second checkpoint with the same answers costs nothing, and a reply from one server is never served as
another's. Only replies that parse into a score on the rubric are cached: a failed or unparseable reply is a
counted failure (never a 0 rating) and is asked again on the next run. A rating outside the rubric ("Rating:
6.5", "Rating: 7") is unparseable, not rounded to a neighbour.
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.error
import urllib.request
from pathlib import Path

from harness.io import cache_dir as harness_cache
from harness.io import stable_hash, write_json
from harness.judges import Judge, Judgement, templates

DEFAULT_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o-2024-08-06"
PROMPT_VERSION = "1"
DEFAULT_RETRIES = 3
DEFAULT_TIMEOUT = 60.0    # seconds per request
DEFAULT_BACKOFF = 0.5     # seconds before the first retry, doubled each time

# Our wording of the MMHal-Bench rubric (docs/benchmarks.md); the judge sees object labels, never the image.
MMHAL_PROMPT = """You are grading an AI assistant's answer about an image for hallucination.
You cannot see the image. You get the objects annotated in it, the question, a reference answer and the
assistant's answer. A hallucination is any claim about the image that the annotations or the reference
contradict, or that is not supported by them.

Rate the answer with one integer from 0 to 6:
6 - very informative with good analysis or reasoning, no hallucination
5 - very informative, no hallucination
4 - somewhat informative, no hallucination
3 - not informative, no hallucination
2 - very informative, with hallucination
1 - somewhat informative, with hallucination
0 - not informative, with hallucination

Image contents: {image_content}
Question: {question}
Reference answer: {target}
Assistant's answer: {prediction}

Explain briefly, then finish with a last line of the form "Rating: <0-6>"."""

MMVET_PROMPT = """Compare the model's answer with the ground truth and give a correctness score between 0.0 and
1.0 (1.0 = fully correct, 0.0 = wrong; partial credit for partly correct open answers). In the ground truth,
<AND> means every part is needed and <OR> means any one part is enough.

Question: {question}
Ground truth: {target}
Model answer: {prediction}

Reply with the score only, e.g. 0.5"""

# Part of the judge's identity: editing the wording changes the cache keys even without a version bump.
TEMPLATE_HASH = stable_hash({"mmhal": MMHAL_PROMPT, "mmvet": MMVET_PROMPT}, length=12)
# The number after "Rating:" whole (a decimal or a multi-digit number included), so that "Rating: 6.5" is seen
# as 6.5 -- off the 0-6 integer rubric, a parse failure -- and never read as its leading digit 6.
_RATING_RE = re.compile(r"rating\s*[:：]\s*\[?\s*([+-]?\d+(?:[.,]\d+)?)", re.IGNORECASE)
_SCORE_RE = re.compile(r"^\s*(0(?:\.\d+)?|1(?:\.0+)?|\.\d+)\s*$")


def parse_rating(reply: str) -> int | None:
    """The MMHal rating; None when there is no "Rating: k" or several different ones."""
    found = set(_RATING_RE.findall(reply or ""))
    if len(found) != 1:
        return None
    text = found.pop()
    return int(text) if text.isdigit() and 0 <= int(text) <= 6 else None


def parse_correctness(reply: str) -> float | None:
    m = _SCORE_RE.match((reply or "").strip().rstrip("."))
    return float(m.group(1)) if m else None


class OpenAIJudge(Judge):
    name = "openai"
    version = PROMPT_VERSION

    def __init__(self, base_url: str | None = None, model: str | None = None, api_key_env: str = "OPENAI_API_KEY",
                 timeout: float | None = None, retries: int | None = None, backoff: float | None = None,
                 cache_dir: str | Path | None = None,
                 max_tokens: int = 512, templates: dict | str | None = None, **_ignored):
        self.base_url = (base_url or os.environ.get("HARNESS_JUDGE_URL") or os.environ.get("OPENAI_BASE_URL")
                         or DEFAULT_URL).rstrip("/")
        self.model = model or os.environ.get("HARNESS_JUDGE_MODEL") or DEFAULT_MODEL
        self.api_key_env = api_key_env
        self.max_tokens = max_tokens
        self.timeout = _setting("HARNESS_JUDGE_TIMEOUT", timeout, DEFAULT_TIMEOUT, float, minimum=0.001)
        self.retries = _setting("HARNESS_JUDGE_RETRIES", retries, DEFAULT_RETRIES, int, minimum=0)
        self.backoff = DEFAULT_BACKOFF if backoff is None else backoff
        self.cache_dir = Path(cache_dir) if cache_dir else harness_cache() / "judge"
        # prompt template per task (harness.judges.templates): the benchmarks' own unless named otherwise
        self.templates = _templates(templates)
        # what this judge cost so far (HTTP requests, retries included; tokens as the endpoint reports them)
        self.usage = {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0}

    def describe(self) -> dict:
        """The judge's identity: what changes a score (never the key, the timeout or the retries)."""
        return {"name": self.name, "model": self.model, "version": self.version, "base_url": self.base_url,
                "template": TEMPLATE_HASH,
                "templates": {task: t.identity(templates.text_of(t)) for task, t in sorted(self.templates.items())}}

    # ------------------------------------------------------------ HTTP

    def _post(self, prompt: str) -> str:
        body = json.dumps({"model": self.model, "temperature": 0, "max_tokens": self.max_tokens,
                           "messages": [{"role": "user", "content": prompt}]}).encode()
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        req = urllib.request.Request(f"{self.base_url}/chat/completions", data=body, headers=headers, method="POST")
        self.usage["requests"] += 1
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:
            data = json.loads(resp.read().decode("utf-8"))
        reported = data.get("usage") if isinstance(data, dict) else None
        for k in ("prompt_tokens", "completion_tokens"):
            if isinstance(reported, dict) and isinstance(reported.get(k), int):
                self.usage[k] += reported[k]
        try:
            return data["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise ValueError(f"malformed reply (no choices[0].message.content): {str(data)[:200]}") from None

    def _cache_path(self, prompt: str) -> Path:
        key = stable_hash({"endpoint": self.base_url, "model": self.model, "template": self.version,
                           "template_hash": TEMPLATE_HASH, "prompt": prompt}, length=32)
        return self.cache_dir / key[:2] / f"{key}.json"

    def cached(self, prompt: str) -> str | None:
        path = self._cache_path(prompt)
        try:
            return json.loads(path.read_text(encoding="utf-8"))["reply"]
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            return None        # a damaged cache entry is simply re-asked (and overwritten once it parses)

    def remember(self, prompt: str, reply: str) -> None:
        """Cache a reply that parsed into a score; failed and unparseable replies are never cached."""
        write_json(self._cache_path(prompt), {"endpoint": self.base_url, "model": self.model,
                                              "template": self.version, "reply": reply})

    def complete(self, prompt: str) -> tuple[str | None, str | None]:
        """-> (reply, None) or (None, error), asking the endpoint (the caller consults and fills the cache)."""
        error = None
        for attempt in range(self.retries + 1):
            try:
                return self._post(prompt), None
            except urllib.error.HTTPError as e:
                error = f"HTTP {e.code} from {self.base_url}"
                if e.code != 429 and e.code < 500:
                    break
            except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
                error = f"{type(e).__name__} talking to {self.base_url}: {getattr(e, 'reason', e)}"
            except (ValueError, json.JSONDecodeError) as e:
                error = f"malformed reply from {self.base_url}: {e}"
                break
            if attempt < self.retries:
                time.sleep(self.backoff * 2 ** attempt)
        return None, error

    # ------------------------------------------------------------ judging

    def judge(self, task: str, row: dict) -> Judgement:
        template = self.templates[task]
        prompt, parse = template.build(row), template.parse
        reply = self.cached(prompt)
        if reply is None or parse(reply) is None:     # an old cache may hold an unparseable reply: ask again
            reply, error = self.complete(prompt)
            if error:
                return Judgement(None, error=error)
        score = parse(reply)
        if score is None:
            return Judgement(None, raw=reply, error="unparseable judge reply")
        self.remember(prompt, reply)
        return Judgement(float(score), raw=reply)


def _templates(given: dict | str | None) -> dict:
    """{task: Template}: "official" (default) / "harness" for both tasks, or {task: template name}."""
    if given is None or isinstance(given, str):
        kind = given or "official"
        given = {task: f"{task}-{kind}" for task in ("mmhal", "mmvet")}
    chosen = {task: templates.get(name) for task, name in given.items()}
    wrong = [f"{task}: {t.name}" for task, t in chosen.items() if t.task != task]
    if wrong or set(chosen) != {"mmhal", "mmvet"}:
        from harness.errors import HarnessError
        raise HarnessError(f"judge templates must name one mmhal and one mmvet template, got {given}")
    return chosen


def _setting(env: str, given, default, kind, minimum):
    """An argument, else the environment variable `env`, else the default; a malformed value is bad input."""
    from harness.errors import HarnessError

    value = given if given is not None else os.environ.get(env) or default
    try:
        value = kind(value)
    except (TypeError, ValueError):
        raise HarnessError(f"{env}: expected {'an integer' if kind is int else 'a number'}, got {value!r}") from None
    if not value >= minimum:          # also refuses NaN
        raise HarnessError(f"{env} must be >= {minimum}, got {value!r}")
    return value
