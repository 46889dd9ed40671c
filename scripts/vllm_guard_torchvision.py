"""Make torchvision importable beside CPU torch in .venv-vllm (run by scripts/vllm-env.sh, idempotent).

Only CUDA builds of torchvision are served for torch 2.13, and their C++ ops do not load with the CPU build of
torch; `import torchvision` then fails in `torchvision/_meta_registrations.py`, whose fake-kernel registrations
(`torch.library.register_fake("torchvision::nms")`, ...) raise "operator torchvision::nms does not exist".
vLLM imports torchvision through transformers' image processors but never calls these ops, so each registration
is made conditional on the operator existing (docs/engines.md).
"""

import importlib.util
import pathlib
import sys

MARK = "_harness_optional_fake"
HELPER = f'''

def {MARK}(name):  # added by the harness's scripts/vllm_guard_torchvision.py: skip ops this build lacks
    def wrap(fn):
        try:
            return torch.library.register_fake(name)(fn)
        except RuntimeError:
            return fn
    return wrap
'''


def main() -> int:
    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.origin is None:
        print("torchvision is not installed; nothing to guard", file=sys.stderr)
        return 0
    path = pathlib.Path(spec.origin).parent / "_meta_registrations.py"
    text = path.read_text()
    if MARK in text:
        return 0
    if "\nimport torch\n" not in text:
        print(f"unexpected layout of {path}; not patched", file=sys.stderr)
        return 1
    text = text.replace("\nimport torch\n", "\nimport torch\n" + HELPER, 1)
    text = text.replace('@torch.library.register_fake("torchvision::', f'@{MARK}("torchvision::')
    path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
