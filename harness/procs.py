"""Worker processes that never outlive the run that started them.

The synthesis stages (responses, rewards) fan out over spawned worker processes. A worker left behind by a
killed run keeps a CPU and its model's memory for as long as its job takes, and competes with the next run.
So every worker:
* asks the kernel to SIGKILL it when its parent dies (Linux `prctl(PR_SET_PDEATHSIG)`; elsewhere a thread that
  polls the parent pid once a second), which covers `kill -9` of the run, where no Python code runs;
* is killed by `worker_pool` when the block using the pool raises (Ctrl-C, a failed job), instead of the
  executor's default of waiting for every running job to finish.
A command with descendants of its own (the vLLM engines) runs under `spawn_group`, whose keeper takes its whole
process group down with the run.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

PR_SET_PDEATHSIG = 1       # linux/prctl.h


def die_with_parent(parent_pid: int, sig: int = signal.SIGKILL) -> None:
    """Worker initializer: end this process (`sig` to it) as soon as `parent_pid` is gone."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, sig)
    else:
        def watch():
            while os.getppid() == parent_pid:
                time.sleep(1.0)
            os.kill(os.getpid(), sig)
        threading.Thread(target=watch, daemon=True).start()
    if os.getppid() != parent_pid:       # the parent died before the death signal was armed
        os.kill(os.getpid(), sig)


# A stdlib-only keeper that leads the process group of a command with descendants of its own (vLLM's server and
# offline engine spawn an engine process and a worker, which a death signal on the command alone would orphan):
# it runs the command in its group and waits; when the run dies (SIGUSR1, armed as its death signal) it kills the
# whole group; a SIGTERM (stop_group's graceful stop, sent to the whole group) it leaves to the command, and it
# exits with the command's status, as a shell would.
GROUP_KEEPER = """
import os, signal, subprocess, sys
signal.signal(signal.SIGUSR1, lambda *_: os.killpg(0, signal.SIGKILL))
signal.signal(signal.SIGTERM, lambda *_: None)   # a handler, not SIG_IGN: the command must not inherit it
rc = subprocess.Popen(sys.argv[1:]).wait()
sys.exit(rc if rc >= 0 else 128 - rc)
"""


def spawn_group(cmd: list[str], **popen_kw) -> subprocess.Popen:
    """`cmd` and everything it spawns in a new session whose group dies with this process, even on `kill -9`
    (GROUP_KEEPER): the Popen is the keeper's, whose pid is the group id (stop it with os.killpg)."""
    parent = os.getpid()
    return subprocess.Popen([sys.executable, "-c", GROUP_KEEPER, *cmd], start_new_session=True,
                            preexec_fn=lambda: die_with_parent(parent, signal.SIGUSR1), **popen_kw)


@contextmanager
def worker_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """A spawn-context process pool whose workers die with this process, and are killed if the block raises."""
    import multiprocessing as mp

    ex = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                             initializer=die_with_parent, initargs=(os.getpid(),))
    try:
        yield ex
    except BaseException:
        procs = list((getattr(ex, "_processes", None) or {}).values())
        ex.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            if p.is_alive():
                p.kill()
        raise
    ex.shutdown(wait=True)
