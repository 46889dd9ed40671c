"""lmms-eval hooks of the example_color task: a solid-colour image, its question, and whether the answer names it."""

from PIL import Image


def doc_to_visual(doc):
    return [Image.new("RGB", (32, 32), doc["color"])]


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    return "what color is this image ?"


def process_results(doc, results):
    return {"names_color": float(doc["color"] in results[0].lower())}
