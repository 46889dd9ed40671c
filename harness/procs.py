"""Worker processes that never outlive the run that started them.

The synthesis stages (responses, rewards) fan out over spawned worker processes. A worker left behind by a
killed run keeps a CPU and its model's memory for as long as its job takes, and competes with the next run.
So every worker:
* asks the kernel to SIGKILL it when its parent dies (Linux `prctl(PR_SET_PDEATHSIG)`; elsewhere a thread that
  polls the parent pid once a second), which covers `kill -9` of the run, where no Python code runs;
* is killed by `worker_pool` when the block using the pool raises (Ctrl-C, a failed job), instead of the
  executor's default of waiting for every running job to finish.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

PR_SET_PDEATHSIG = 1       # linux/prctl.h


def die_with_parent(parent_pid: int) -> None:
    """Worker initializer: end this process as soon as `parent_pid` is gone."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    else:
        def watch():
            while os.getppid() == parent_pid:
                time.sleep(1.0)
            os._exit(1)
        threading.Thread(target=watch, daemon=True).start()
    if os.getppid() != parent_pid:       # the parent died before the death signal was armed
        os._exit(1)


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
