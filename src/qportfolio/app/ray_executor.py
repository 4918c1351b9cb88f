"""Run independent tasks on Ray: an embedded instance on this machine, or a running cluster by address.

Without an address, Ray starts in-process (no dashboard, quiet logs, ``num_cpus`` = the workers asked for
or the machine's cores) and every Ray process listens on 127.0.0.1 only. ``auto``, ``host:port`` or
``ray://host:port`` joins a cluster, whose nodes must have qportfolio installed.

Each task asks Ray for the memory it will use (``Task.memory`` bytes), so tasks that do not fit together
are never co-scheduled, and runs with ``NUMBA_NUM_THREADS=1`` (one core per task: parallelism comes
from the tasks). At most ``max_workers`` tasks are in flight (default: the cluster's CPUs), so an
interrupt loses only those.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from qportfolio.errors import ConfigError

#: What every task runs with: numba's thread pool of one (Ray already sets OMP_NUM_THREADS to the task's CPUs).
TASK_ENV = {"NUMBA_NUM_THREADS": "1"}
LOOPBACK = ("127.0.0.1", "localhost")


@dataclass
class Task:
    """One call ``function(*args)``; ``key`` names it in the results, ``memory`` is in bytes."""

    key: Any
    args: tuple
    memory: int


def _loopback_only() -> None:
    """Make Ray take 127.0.0.1 as this node's address (on Linux it would take the machine's, and listen on
    every interface). Ray reads the switch when imported; the module constant covers an earlier import."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    import ray._private.ray_constants as constants

    constants.ENABLE_RAY_CLUSTER = False


def _is_loopback(address: str | None) -> bool:
    if address is None:
        return True
    host = address.removeprefix("ray://").rsplit(":", 1)[0]
    return host in LOOPBACK


@contextlib.contextmanager
def ray_session(address: str | None = None, max_workers: int | None = None) -> Iterator[int]:
    """A Ray connection for the ``with`` block; yields how many tasks may run at once. Re-entrant: inside a
    session already open, the block reuses it."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if _is_loopback(address):
        _loopback_only()
    import ray

    if ray.is_initialized():
        yield max_workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        return
    quiet = {"logging_level": logging.ERROR, "log_to_driver": False}
    try:
        if address is None:
            ray.init(num_cpus=max_workers or os.cpu_count() or 1, include_dashboard=False, **quiet)
        else:
            ray.init(address=address, **quiet)
    except (ConnectionError, ValueError, RuntimeError) as error:
        where = "an embedded Ray instance" if address is None else f"the Ray cluster at {address}"
        raise ConfigError(f"could not start or reach {where} ({str(error).splitlines()[0]}): check --address "
                          "(auto, host:port or ray://host:port) and that the cluster runs") from None
    try:
        yield max_workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    finally:
        ray.shutdown()


def run_tasks(function: Callable, tasks: Iterable[Task], slots: int,
              on_result: Callable[[Task, Any, BaseException | None], None]) -> None:
    """Run ``function(*task.args)`` for every task on the open Ray session, ``slots`` at a time, calling
    ``on_result(task, value, error)`` as each finishes (``error``: what Ray raised, e.g. a worker killed).
    On an interrupt the tasks in flight are cancelled and the interrupt goes on."""
    import ray

    remote = ray.remote(num_cpus=1, max_retries=0)(function)
    pending = iter(tasks)
    in_flight: dict = {}

    def submit() -> bool:
        task = next(pending, None)
        if task is None:
            return False
        ref = remote.options(memory=int(task.memory), runtime_env={"env_vars": TASK_ENV}).remote(*task.args)
        in_flight[ref] = task
        return True

    try:
        while len(in_flight) < slots and submit():
            pass
        while in_flight:
            (ref,), _ = ray.wait(list(in_flight), num_returns=1)
            task = in_flight.pop(ref)
            try:
                value, error = ray.get(ref), None
            except ray.exceptions.RayError as failure:
                value, error = None, failure
            on_result(task, value, error)
            submit()
    except BaseException:
        for ref in in_flight:
            ray.cancel(ref, force=True)
        raise
