"""Judges: the rule judge's rubric on hand-made answers; the OpenAI-compatible judge against a local server
(success, HTTP 500, timeout, malformed reply, cache); failures are counted, never scored 0."""

from __future__ import annotations

import json
import time

import pytest
from fake_openai import FakeOpenAI, chat_reply

from harness.errors import HarnessError
from harness.judges import load_judge
from harness.judges.openai_judge import OpenAIJudge, parse_correctness, parse_rating
from harness.judges.rule import RuleJudge
from harness.world.scene import Obj, make_scene

SCENE = make_scene("kitchen", [Obj("cup", "red", "small", (0, 0)), Obj("fork", "blue", "big", (1, 1))])


def row(question, target, prediction, kind, **meta):
    return {"id": "x", "question": question, "target": target, "prediction": prediction,
            "scene": SCENE.to_dict(), "meta": {"kind": kind, **meta}}


@pytest.mark.parametrize("pred,kind,meta,expected", [
    ("red .", "color", {"object": "cup"}, 6),                    # right, well-formed
    ("red", "color", {"object": "cup"}, 5),                      # right, not well-formed
    ("blue .", "color", {"object": "cup"}, 0),                   # wrong colour: hallucination, not informative
    ("yes .", "color", {"object": "cup"}, 3),                    # no answer to the question, nothing false
    ("red . there is a dog .", "color", {"object": "cup"}, 2),   # right, but an absent dog
    ("there is no plate .", "adversarial", {"object": "plate"}, 6),
    ("green .", "adversarial", {"object": "plate"}, 0),          # colour of an object that is not there
    ("two .", "count", {"count": 2}, 6),
    ("three .", "count", {"count": 2}, 0),
    ("on the top left .", "position", {"object": "cup"}, 6),
    ("on the top right .", "position", {"object": "cup"}, 0),
])
def test_rule_judge_mmhal_rubric(pred, kind, meta, expected):
    targets = {"color": "red .", "adversarial": "there is no plate .", "count": "two .", "position": "on the top left ."}
    j = RuleJudge().judge("mmhal", row("q", targets[kind], pred, kind, **meta))
    assert j.error is None and j.score == expected, j.raw


def test_rule_judge_descriptions():
    target = "there is a small red cup on the top left and a big blue fork on the bottom right ."
    full = RuleJudge().judge("mmhal", row("describe this image .", target, target, "describe"))
    assert full.score == 6
    extra = RuleJudge().judge("mmhal", row("d", target, target[:-1] + "and a small red plate on the top right .",
                                           "describe"))
    assert extra.score == 2                                  # very informative, with hallucination
    half = RuleJudge().judge("mmhal", row("d", target, "there is a small red cup on the top left .", "describe"))
    assert half.score == 4
    # the right classes with a wrong colour, or the same object twice, are false claims too
    recolored = "there is a small blue cup on the top left and a big blue fork on the bottom right ."
    assert RuleJudge().judge("mmhal", row("d", target, recolored, "describe")).score == 1   # half right + false
    twice = "there is a small red cup on the top left and a small red cup on the top right ."
    assert RuleJudge().judge("mmhal", row("d", target, twice, "describe")).score == 1
    # MM-Vet: F1 of true claims vs true objects: claims cup (true), plate (false) of {cup, fork}: P = R = 1/2
    vet = RuleJudge().judge("mmvet", row("d", target, "there is a cup and a plate .", "describe"))
    assert vet.score == pytest.approx(0.5)
    assert RuleJudge().judge("mmvet", row("q", "red .", "red .", "color")).score == 1.0
    assert RuleJudge().judge("mmvet", row("q", "red .", "blue .", "color")).score == 0.0


def test_rule_judge_counts_unscorable_items_as_failures():
    rows = [row("q", "red .", "red .", "color"), {"id": "bad", "prediction": "x"}]   # no scene: cannot judge
    failures = RuleJudge().judge_rows("mmhal", rows)
    assert failures == 1
    assert rows[0]["score"] == 6 and rows[1]["score"] is None and rows[1]["judge_failed"]


def test_registry_names():
    assert isinstance(load_judge("rule"), RuleJudge)
    assert isinstance(load_judge("openai", base_url="http://127.0.0.1:9"), OpenAIJudge)
    with pytest.raises(HarnessError, match="unknown judge"):
        load_judge("gpt5-magic")


def test_reply_parsers():
    assert parse_rating("The answer is fine.\nRating: 5") == 5
    assert parse_rating("Rating: 5 ... actually Rating: 2") is None     # several ratings: failure, not 0
    assert parse_rating("I would say five") is None
    assert parse_correctness("0.5") == 0.5 and parse_correctness("1.0") == 1.0
    assert parse_correctness("about half") is None and parse_correctness("1.5") is None


# ---------------------------------------------------------------- the HTTP judge against a local server

class _Server:
    """An OpenAI-compatible /chat/completions endpoint on 127.0.0.1 whose behaviour the test sets."""

    def __init__(self):
        self.mode = "ok"
        self.reply = "Looks right.\nRating: 5"
        self.calls = 0
        self.auth = []

        def answer(path, headers, body):
            self.calls += 1
            self.auth.append(headers.get("Authorization"))
            assert body["messages"][0]["role"] == "user"
            if self.mode == "500":
                return 500, None
            if self.mode == "slow":
                time.sleep(1.0)
            return chat_reply(self.reply) if self.mode != "malformed" else (200, {"unexpected": True})
        self.server = FakeOpenAI(answer)
        self.url = self.server.url

    def close(self):
        self.server.close()


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.close()


def judge_for(server, tmp_path, **kw):
    return OpenAIJudge(base_url=server.url, model="judge-test", cache_dir=tmp_path / "cache", backoff=0.01, **kw)


def mmhal_row(pred="a red cup ."):
    return {"id": "1", "question": "what is there ?", "target": "a red cup", "prediction": pred,
            "image_content": ["cup"]}


def test_http_judge_success_and_cache(server, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret")
    j = judge_for(server, tmp_path)
    rows = [mmhal_row()]
    assert j.judge_rows("mmhal", rows) == 0
    assert rows[0]["score"] == 5.0 and not rows[0]["judge_failed"]
    assert server.calls == 1 and server.auth == ["Bearer sk-test-secret"]
    rows2 = [mmhal_row()]
    j.judge_rows("mmhal", rows2)                           # same prompt + model: served from the disk cache
    assert server.calls == 1 and rows2[0]["score"] == 5.0
    assert "sk-test" not in json.dumps(j.describe()) and j.describe()["model"] == "judge-test"
    assert not any("sk-test" in p.read_text() for p in (tmp_path / "cache").rglob("*.json"))


def test_http_judge_500_retries_then_fails(server, tmp_path):
    server.mode = "500"
    j = judge_for(server, tmp_path, retries=2)
    res = j.judge("mmhal", mmhal_row())
    assert res.score is None and "HTTP 500" in res.error
    assert server.calls == 3                               # 1 try + 2 retries


def test_http_judge_timeout(server, tmp_path):
    server.mode = "slow"
    j = judge_for(server, tmp_path, retries=0, timeout=0.2)
    res = j.judge("mmhal", mmhal_row())
    assert res.score is None
    assert "timed out" in res.error.lower() or "timeout" in res.error.lower(), res.error


def test_http_judge_malformed_reply_and_unparseable_rating(server, tmp_path):
    server.mode = "malformed"
    j = judge_for(server, tmp_path, retries=3)
    res = j.judge("mmhal", mmhal_row())
    assert res.score is None and "malformed" in res.error and server.calls == 1   # no retry on a bad body
    server.mode, server.reply = "ok", "I cannot decide."
    rows = [mmhal_row("x"), {**mmhal_row("y"), "id": "2"}]
    server.reply = "Rating: 4"
    ok = judge_for(server, tmp_path)
    ok.judge_rows("mmhal", rows[:1])
    server.reply = "no rating here"
    failures = ok.judge_rows("mmhal", rows)               # rows[0] cached (4), rows[1] unparseable
    assert failures == 1
    assert rows[0]["score"] == 4.0 and rows[1]["score"] is None and rows[1]["judge_failed"]


def test_judge_that_is_down_is_a_harness_error(tmp_path):
    j = OpenAIJudge(base_url="http://127.0.0.1:9/v1", cache_dir=tmp_path, retries=0, timeout=1)
    with pytest.raises(HarnessError, match="failed on all 2"):
        j.judge_rows("mmvet", [mmhal_row(), {**mmhal_row(), "id": "2"}])
    rows = [{**mmhal_row(), "id": str(i)} for i in range(50)]
    with pytest.raises(HarnessError, match="failed on the first 3"):     # stops early, does not try all 50
        j.judge_rows("mmvet", rows)
    assert "score" not in rows[3]
