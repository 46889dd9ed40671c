"""`harness data prepare SUITE --from hub`: the same layout, filled from the hub datasets lmms-eval uses.

Needs a connected machine (and `hf auth login` where a dataset is gated); it cannot run in CI, so it is kept
small: the rows are mapped field by field into the documents `--from PATH` writes. Only suites whose complete
benchmark is on the hub in a dataset lmms-eval reads are offered; the others (AMBER's discriminative half,
MMHal-Bench's images, Object HalBench) need the official release and `--from PATH`.
"""

from __future__ import annotations

from harness.data.convert import POPE_SPLITS
from harness.errors import HarnessError

# suite -> (dataset, config, {split: docs file}); the ids lmms-eval's own task YAMLs load
HUB_DATASETS = {
    "pope": ("lmms-lab-encoder/POPE", "Full", POPE_SPLITS),
    "mmvet": ("lmms-lab-encoder/MMVet", None, {"test": "mmvet.jsonl"}),
}


def fill_from_hub(suite: str, writer) -> None:
    if suite not in HUB_DATASETS:
        raise HarnessError(f"{suite}: no complete hub dataset that lmms-eval uses; download the official release "
                           f"and run `harness data prepare {suite} --from PATH`")
    from harness.models.hub import offline
    if offline():
        raise HarnessError(f"{suite}: --from hub needs the hub, but HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE is set")
    import io

    from datasets import load_dataset
    repo, config, splits = HUB_DATASETS[suite]
    for split, docs in splits.items():
        try:
            rows = load_dataset(repo, config, split=split)
        except Exception as e:  # noqa: BLE001 - datasets raises many kinds; the user needs the message
            raise HarnessError(f"{suite}: cannot load {repo} ({split}) from the hub: {e}") from None
        for i, row in enumerate(rows):
            buf = io.BytesIO()
            row["image"].convert("RGB").save(buf, format="PNG")     # lossless: the pixels lmms-eval would see
            name = f"{split}-{i:06d}.png"
            image = writer.image_bytes(buf.getvalue(), name)
            if suite == "pope":
                doc = {"question_id": row["question_id"], "question": row["question"],
                       "answer": str(row["answer"]).strip().lower(), "image_source": row.get("image_source"),
                       "category": row.get("category", split), "image": image}
            else:
                caps = row.get("capability") or ""
                doc = {"question_id": row["question_id"], "question": row["question"], "answer": row["answer"],
                       "capability": ",".join(caps) if isinstance(caps, list) else str(caps), "image": image}
            writer.add(docs, doc)
