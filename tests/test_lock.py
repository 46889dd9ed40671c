"""The install is the lock: every installed package is pinned in requirements.txt (CPU) or requirements-gpu.txt
(GPU) at that version; pylock.toml / pylock.gpu.toml (PEP 751) hold the same pins.

A package that floats (installed but not locked, or at another version than the lock says) is how a fresh
clone broke once with no change in the project (filelock 4.3.1 removed a module lmms-eval imports).
"""

from __future__ import annotations

import re
from importlib.metadata import distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Bootstrap tools of the virtual environment itself and the project (installed from the checkout).
NOT_LOCKED = {"pip", "harness"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(lock: Path) -> dict[str, str]:
    pins = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)", line)
        if m:
            pins[_norm(m.group(1))] = m.group(2)
    return pins


def _installed_lock() -> Path:
    import torch
    return ROOT / ("requirements.txt" if "+cpu" in torch.__version__ or not torch.version.cuda
                   else "requirements-gpu.txt")


def test_every_installed_package_is_locked_at_its_version():
    pins = locked(_installed_lock())
    installed = {_norm(d.metadata["Name"]): d.version for d in distributions() if d.metadata["Name"]}
    floating = {n: v for n, v in installed.items() if n not in NOT_LOCKED and pins.get(n) != v}
    assert not floating, f"installed but not locked at that version ({_installed_lock().name}): {floating}"


@pytest.mark.parametrize("lock", ["requirements.txt", "requirements-gpu.txt"])
def test_lock_pins_the_known_breakages(lock):
    pins = locked(ROOT / lock)
    assert pins["torch"].startswith("2.13.0")
    major, minor = (int(x) for x in pins["filelock"].split(".")[:2])
    assert (major, minor) < (4, 3), "lmms-eval 0.7.3 imports filelock._api, removed in filelock 4.3.1"
    assert "torchvision" not in pins, "the CUDA torchvision wheel breaks `import lmms_eval` with CPU torch"
    for line in (ROOT / lock).read_text().splitlines():
        if re.match(r"^[A-Za-z0-9]", line):
            assert "--hash" in line or line.rstrip().endswith("\\"), f"pin without hash: {line}"


@pytest.mark.parametrize("lock, pylock", [("requirements.txt", "pylock.toml"),
                                          ("requirements-gpu.txt", "pylock.gpu.toml")])
def test_pylock_holds_the_same_pins_with_hashes(lock, pylock):
    import tomllib
    packages = tomllib.loads((ROOT / pylock).read_text(encoding="utf-8"))["packages"]
    assert {_norm(p["name"]): p["version"] for p in packages} == locked(ROOT / lock)
    for p in packages:
        files = p.get("wheels", []) + ([p["sdist"]] if "sdist" in p else [])
        assert files and all(f["hashes"].get("sha256") for f in files), f"{p['name']}: a file without a hash"
