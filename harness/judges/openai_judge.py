"""A judge behind any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, llama.cpp server, ...).

Configuration: base URL (argument, else $HARNESS_JUDGE_URL, else $OPENAI_BASE_URL, else api.openai.com/v1),
model (argument, else $HARNESS_JUDGE_MODEL, else gpt-4o-2024-08-06), key read from the environment variable named
by `api_key_env` (default OPENAI_API_KEY; a local server may need none) and never written anywhere.
Retries with exponential backoff (0.5 s, 1 s, 2 s, ...) on timeouts, connection errors, HTTP 429 and 5xx; other
HTTP errors fail at once. Replies are cached on disk under a hash of (judge model, prompt), so a re-run or a
second checkpoint with the same answers costs nothing. Unparseable replies are failures, never a 0 rating.
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.error
import urllib.request
from pathlib import Path

from harness.io import stable_hash, write_json
from harness.judges import Judge, Judgement

DEFAULT_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o-2024-08-06"
PROMPT_VERSION = "1"
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF = 0.5     # seconds before the first retry, doubled each time

# Our wording of the MMHal-Bench rubric (FACTS.md §2); the judge sees object labels, never the image.
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

_RATING_RE = re.compile(r"rating\s*[:：]\s*\[?\s*([0-6])\b", re.IGNORECASE)
_SCORE_RE = re.compile(r"^\s*(0(?:\.\d+)?|1(?:\.0+)?|\.\d+)\s*$")


def parse_rating(reply: str) -> int | None:
    """The MMHal rating; None when there is no "Rating: k" or several different ones."""
    found = {int(m) for m in _RATING_RE.findall(reply or "")}
    return found.pop() if len(found) == 1 else None


def parse_correctness(reply: str) -> float | None:
    m = _SCORE_RE.match((reply or "").strip().rstrip("."))
    return float(m.group(1)) if m else None


class OpenAIJudge(Judge):
    name = "openai"
    version = PROMPT_VERSION

    def __init__(self, base_url: str | None = None, model: str | None = None, api_key_env: str = "OPENAI_API_KEY",
                 timeout: float = 60.0, retries: int | None = None, backoff: float | None = None,
                 cache_dir: str | Path | None = None,
                 max_tokens: int = 512, **_ignored):
        self.base_url = (base_url or os.environ.get("HARNESS_JUDGE_URL") or os.environ.get("OPENAI_BASE_URL")
                         or DEFAULT_URL).rstrip("/")
        self.model = model or os.environ.get("HARNESS_JUDGE_MODEL") or DEFAULT_MODEL
        self.api_key_env = api_key_env
        self.timeout, self.max_tokens = timeout, max_tokens
        self.retries = DEFAULT_RETRIES if retries is None else retries
        self.backoff = DEFAULT_BACKOFF if backoff is None else backoff
        root = Path(cache_dir) if cache_dir else Path(os.environ.get(
            "HARNESS_CACHE_DIR", Path.home() / ".cache" / "harness")) / "judge"
        self.cache_dir = root

    def describe(self) -> dict:
        return {"name": self.name, "model": self.model, "version": self.version, "base_url": self.base_url}

    # ------------------------------------------------------------ HTTP

    def _post(self, prompt: str) -> str:
        body = json.dumps({"model": self.model, "temperature": 0, "max_tokens": self.max_tokens,
                           "messages": [{"role": "user", "content": prompt}]}).encode()
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        req = urllib.request.Request(f"{self.base_url}/chat/completions", data=body, headers=headers, method="POST")
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:
            data = json.loads(resp.read().decode("utf-8"))
        try:
            return data["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise ValueError(f"malformed reply (no choices[0].message.content): {str(data)[:200]}") from None

    def complete(self, prompt: str) -> tuple[str | None, str | None]:
        """-> (reply, None) or (None, error); cached replies are returned without a request."""
        key = stable_hash({"model": self.model, "prompt": prompt}, length=32)
        path = self.cache_dir / key[:2] / f"{key}.json"
        if path.is_file():
            try:
                return json.loads(path.read_text())["reply"], None
            except (OSError, json.JSONDecodeError, KeyError):
                pass           # a damaged cache entry is simply re-asked
        error = None
        for attempt in range(self.retries + 1):
            try:
                reply = self._post(prompt)
                write_json(path, {"model": self.model, "reply": reply})
                return reply, None
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
        fields = {"question": row.get("question", ""), "target": row.get("target", ""),
                  "prediction": row.get("prediction", ""),
                  "image_content": ", ".join(row.get("image_content") or sorted(
                      o["cls"] for o in (row.get("scene") or {}).get("objects", [])))}
        prompt = (MMHAL_PROMPT if task == "mmhal" else MMVET_PROMPT).format(**fields)
        reply, error = self.complete(prompt)
        if error:
            return Judgement(None, error=error)
        score = parse_rating(reply) if task == "mmhal" else parse_correctness(reply)
        if score is None:
            return Judgement(None, raw=reply, error="unparseable judge reply")
        return Judgement(float(score), raw=reply)
