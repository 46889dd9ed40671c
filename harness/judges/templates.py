"""Judge prompt templates by name: the benchmarks' own (the default for real suites) and the harness's wording.

A template is part of the judge's identity (name + version + a hash of its text, harness.judges.openai_judge):
replies cached under one template are never served for another. docs/benchmarks.md § MMHal-Bench, § MM-Vet.

* `mmhal-official`: MMHal-Bench's GPT-4 prompt (llava-rlhf/LLaVA-RLHF, Eval/eval_gpt_mmhal.py, commit 830a083),
  its five worked examples and its rating options, filled in the script's order (image contents joined by ", ",
  question, standard answer, model response). The official script reads the rating as the one k in 0..6 whose
  "rating: k" occurs in the lower-cased reply, and scores 0 when none or several occur
  (benchmarks.official.mmhal.official_rating); the harness counts such a reply as a judge failure (`parse`), and
  the suite reports the official value beside it.
* `mmvet-official`: MM-Vet's few-shot table prompt (yuweihao/MM-Vet, mm-vet_evaluator.py, commit acde843): the
  prompt, a new line, then "question | ground truth | prediction | " with the ground truth's <AND> / <OR> spaced
  out as the script does; the reply's first space-separated token is the correctness when it is a number in
  [0, 1] (the script asks again up to 5 times, then scores 0.0; the harness counts a failure).
* `mmhal-harness`, `mmvet-harness`: the harness's own wording (harness.judges.openai_judge), only by name.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from harness.errors import HarnessError
from harness.io import stable_hash

MMHAL_OFFICIAL_TEXT = """Please act as an impartial and objective judge and evaluate the quality of the response provided by a Large Multimodal Model (LMM) to the user question. Your evaluation should be mainly based on whether the response is informative, and whether the response contains any hallucination. Hallucination, in this context, refers to a situation where the LMM generates a response that includes information not present or implied in the image or previous conversation. A hallucination could be a false claim about an object, action, emotion, or any other detail that is not grounded in the image.

For clarity, consider these examples:

### Example 1:
- Image Contents: Lynx, Cat
- Question: How many cats can you see in this image?
- Standard Human-Generated Answer: There are two cats visible in the image.
- LMM Response to Evaluate: There is one cat in the image.
- Analysis: The LMM's response is false because it claims there is only one cat in the image, when in fact there are two.
- Hallucination: Yes.

### Example 2:
- Image Contents: Tree, Plant, Panda, Animal
- Question: What can you see from this photo?
- Standard Human-Generated Answer: In this photo we can see branches. We can see a panda on a branch. The background is blurry.
- LMM Response to Evaluate: In the photo, I can see a large black and white panda sitting on a tree branch. The image captures the panda's unique appearance and its natural habitat, showcasing the beauty and rarity of these animals.
- Analysis: The LMM's response is not false because it does not make any false claims about the image contents. For example, it does not claim that the panda is eating bamboo.
- Hallucination: No.

### Example 3:
- Image Contents: Fashion accessory, Mammal, Dog, Umbrella
- Question: Describe this image in details.
- Standard Human-Generated Answer: In this picture I can see a dog laying under a yellow umbrella on a beach, and there is a rope on the right side. In the background I can see few persons talking or lying. At the top of the image, I can see the blue and clear sky.
- LMM Response to Evaluate: The image features a brown dog laying on the sand at the beach, underneath a yellow umbrella. The dog is positioned near the water, and there are people in the background. The beach is sandy, and the sun is shining, creating a pleasant atmosphere. The dog is enjoying the shade provided by the umbrella, which is a common way to protect pets from the sun's harmful rays. The presence of people in the background suggests that the beach is a popular spot for leisure activities, such as sunbathing, swimming, and relaxing.
- Analysis: The LMM's response is false because it claims that the dog is positioned near the water, but there is no water in the image.
- Hallucination: Yes.

### Example 4:
- Image Contents: Clothing, Luggage and bags, Man, Building, Woman, Person
- Question: Where is this photo taken?
- Standard Human-Generated Answer: From the slogan "Welcome to Houston, Texas", we can infer that this photo is taken at an airport in Houston, Texas.
- LMM Response to Evaluate: This photo is taken at an airport, specifically at the entrance of a terminal. However, the specific location of this airport cannot be determined from the image.
- Analysis: Although the LMM's response does not explicitly mention the location "Houston, Texas" and does not perfectly answer the question, it makes no false claims about the image contents. Therefore, this response is not considered hallucination. It is OK if the LMM fails to directly answer the question, expresses uncertainty, or cannot include all the objects or details in the human-generated answer.
- Hallucination: No.

### Example 5:
- Image Contents: Tree, Tower
- Question: What environmental concerns are involved in this photo?
- Standard Human-Generated Answer: This photo shows a smokestack emitting smoke. It may cause severe air pollution which threatens human health.
- LMM Response to Evaluate: In the photo, there are several environmental concerns related to the smokestack emitting smoke. The smoke from the smokestack is a byproduct of industrial processes, which can contribute to air pollution, climate change, and negative impacts on human health. The smoke contains harmful pollutants, such as particulate matter, sulfur dioxide, nitrogen oxides, and carbon monoxide, which can lead to respiratory problems, heart disease, and other health issues. Additionally, the smoke contributes to the greenhouse effect, which can lead to global warming and climate change. The smokestack's emissions also affect the environment, as they can harm wildlife, vegetation, and ecosystems. Therefore, it is essential to address these environmental concerns by implementing measures to reduce emissions and promote sustainable practices in industrial processes.
- Analysis: Although the LMM's response is significantly longer than the standard human-generated answer, it does not contain any false claims about the image contents. Instead, it provides additional general information about the environmental concerns, which can be inferred from the smoke emission. Such detailed analysis or reasoning should be considered as a positive aspect, as long as it contains no false claims.
- Hallucination: No.

With these examples in mind, please help me evaluate whether the response by the LMM is informative, and whether hallucination exists in it, based on the comparison between the LMM's response and the factual information provided in the image contents, question, and the standard human-generated answer below.

Please note that the standard human-generated answer may only contain factual information but may not give a detailed analysis. Also, the standard human-generated answer may not be completely comprehensive in describing all the objects and their attributes, so please be a bit more cautious during evalutation. LMM's detailed analysis or reasoning should be encouraged.

To evaluate the LMM responses, first, begin your evaluation by providing a short explanation. Second, after providing your explanation, you must rate the response by choosing from the following options:
- Rating: 6, very informative with good analysis or reasoning, no hallucination
- Rating: 5, very informative, no hallucination
- Rating: 4, somewhat informative, no hallucination
- Rating: 3, not informative, no hallucination
- Rating: 2, very informative, with hallucination
- Rating: 1, somewhat informative, with hallucination
- Rating: 0, not informative, with hallucination

### Image Contents
{}

### Question
{}

### Standard Human-Generated Answer
{}

### LMM Response to Evaluate
{}
"""

MMVET_OFFICIAL_TEXT = """Compare the ground truth and prediction from AI models, to give a correctness score for the prediction. <AND> in the ground truth means it is totally right only when all elements in the ground truth are present in the prediction, and <OR> means it is totally right when any one element in the ground truth is present in the prediction. The correctness score is 0.0 (totally wrong), 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, or 1.0 (totally right). Just complete the last space of the correctness score.

Question | Ground truth | Prediction | Correctness
--- | --- | --- | ---
What is x in the equation? | -1 <AND> -5 | x = 3 | 0.0
What is x in the equation? | -1 <AND> -5 | x = -1 | 0.5
What is x in the equation? | -1 <AND> -5 | x = -5 | 0.5
What is x in the equation? | -1 <AND> -5 | x = -5 or 5 | 0.5
What is x in the equation? | -1 <AND> -5 | x = -1 or x = -5 | 1.0
Can you explain this meme? | This meme is poking fun at the fact that the names of the countries Iceland and Greenland are misleading. Despite its name, Iceland is known for its beautiful green landscapes, while Greenland is mostly covered in ice and snow. The meme is saying that the person has trust issues because the names of these countries do not accurately represent their landscapes. | The meme talks about Iceland and Greenland. It's pointing out that despite their names, Iceland is not very icy and Greenland isn't very green. | 0.4
Can you explain this meme? | This meme is poking fun at the fact that the names of the countries Iceland and Greenland are misleading. Despite its name, Iceland is known for its beautiful green landscapes, while Greenland is mostly covered in ice and snow. The meme is saying that the person has trust issues because the names of these countries do not accurately represent their landscapes. | The meme is using humor to point out the misleading nature of Iceland's and Greenland's names. Iceland, despite its name, has lush green landscapes while Greenland is mostly covered in ice and snow. The text 'This is why I have trust issues' is a playful way to suggest that these contradictions can lead to distrust or confusion. The humor in this meme is derived from the unexpected contrast between the names of the countries and their actual physical characteristics. | 1.0
"""


@dataclass(frozen=True)
class Template:
    name: str
    task: str                                   # "mmhal" | "mmvet"
    version: str
    build: Callable[[dict], str]                # sample row -> prompt
    parse: Callable[[str], float | None]        # reply -> score, None = a counted judge failure

    def identity(self, text: str) -> dict:
        return {"name": self.name, "version": self.version, "hash": stable_hash(text, length=12)}


def _mmhal_official_prompt(row: dict) -> str:
    parts = MMHAL_OFFICIAL_TEXT.split("{}")
    fields = [", ".join(row.get("image_content") or ()), row.get("question", ""), row.get("target", ""),
              row.get("prediction", "")]
    return "".join(p + f for p, f in zip(parts, fields)) + parts[-1]


def parse_official_rating(reply: str) -> int | None:
    """The official reading with the harness's correction: the one k whose "rating: k" occurs (lower-cased), None
    (a judge failure) when none or several occur, or when the rating is followed by more digits ("Rating: 6.5")."""
    text = (reply or "").lower()
    found = {k for k in range(7) if f"rating: {k}" in text}
    if len(found) != 1 or re.search(r"rating: [0-6][.,]?\d", text):
        return None
    return found.pop()


def _mmvet_official_prompt(row: dict) -> str:
    answer = str(row.get("target", "")).replace("<AND>", " <AND> ").replace("<OR>", " <OR> ")
    return MMVET_OFFICIAL_TEXT + "\n" + " | ".join([row.get("question", ""), answer, row.get("prediction", ""), ""])


def _parse_mmvet_official(reply: str) -> float | None:
    from benchmarks.official.mmvet import official_correctness

    return official_correctness(reply)


def _harness_template(task: str) -> Template:
    from harness.judges import openai_judge as oj

    text = oj.MMHAL_PROMPT if task == "mmhal" else oj.MMVET_PROMPT
    fields = ("question", "target", "prediction")

    def build(row: dict) -> str:
        values = {k: row.get(k, "") for k in fields}
        values["image_content"] = ", ".join(row.get("image_content") or sorted(
            o["cls"] for o in (row.get("scene") or {}).get("objects", [])))
        return text.format(**values)
    return Template(f"{task}-harness", task, oj.PROMPT_VERSION, build,
                    oj.parse_rating if task == "mmhal" else oj.parse_correctness)


OFFICIAL = {"mmhal": Template("mmhal-official", "mmhal", "1", _mmhal_official_prompt, parse_official_rating),
            "mmvet": Template("mmvet-official", "mmvet", "1", _mmvet_official_prompt, _parse_mmvet_official)}
TEXTS = {"mmhal-official": MMHAL_OFFICIAL_TEXT, "mmvet-official": MMVET_OFFICIAL_TEXT}
NAMES = ("mmhal-official", "mmvet-official", "mmhal-harness", "mmvet-harness")


def get(name: str) -> Template:
    """A template by name (NAMES); HarnessError for any other."""
    for t in OFFICIAL.values():
        if t.name == name:
            return t
    if name in ("mmhal-harness", "mmvet-harness"):
        return _harness_template(name.split("-")[0])
    raise HarnessError(f"unknown judge template {name!r}; known: {', '.join(NAMES)}")


def text_of(template: Template) -> str:
    if template.name in TEXTS:
        return TEXTS[template.name]
    from harness.judges import openai_judge as oj

    return oj.MMHAL_PROMPT if template.task == "mmhal" else oj.MMVET_PROMPT
