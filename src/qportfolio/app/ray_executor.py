"""Run independent tasks on Ray: an embedded instance on this machine, or a running cluster by address.

Without an address, Ray starts in-process (no dashboard, quiet logs, ``num_cpus`` = the workers asked for
or the machine's cores) and every Ray process listens on 127.0.0.1 only. ``auto``, ``host:port`` or
``ray://host:port`` joins a cluster, whose nodes must have qportfolio installed.

A cluster with token authentication (what ``ray start --head`` enables once a token exists) is joined as
Ray's own clients join one: unless ``RAY_AUTH_MODE`` says otherwise, a token from Ray's documented sources
(``RAY_AUTH_TOKEN``, the file ``RAY_AUTH_TOKEN_PATH`` names, ``~/.ray/auth_token``, in that order) is sent.
A refused or missing token is a one-line error saying which of these to set.

Each task asks Ray for the memory it will use (``Task.memory`` bytes), so tasks that do not fit together
are never co-scheduled, and runs with ``NUMBA_NUM_THREADS=1`` (one core per task: parallelism comes
from the tasks). At most ``max_workers`` tasks are in flight (default: the cluster's CPUs), so an
interrupt loses only those.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qportfolio.errors import ConfigError

#: What every task runs with: numba's thread pool of one (Ray already sets OMP_NUM_THREADS to the task's CPUs).
TASK_ENV = {"NUMBA_NUM_THREADS": "1"}
LOOPBACK = ("127.0.0.1", "localhost")
AUTH_MODE = "RAY_AUTH_MODE"
SET_TOKEN = ("set RAY_AUTH_TOKEN to the cluster's token (`ray get-auth-token` on its head node prints it) or "
             "RAY_AUTH_TOKEN_PATH to a file holding it")


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


def token_source() -> str | None:
    """Where Ray's clients would read an authentication token from (its documented sources, first that holds
    one wins), or None."""
    if os.environ.get("RAY_AUTH_TOKEN", "").strip():
        return "RAY_AUTH_TOKEN"
    named = os.environ.get("RAY_AUTH_TOKEN_PATH")
    for path, label in ((named, f"RAY_AUTH_TOKEN_PATH ({named})"), (Path.home() / ".ray" / "auth_token", None)):
        try:
            if path and Path(path).read_text().strip():
                return label or str(path)
        except OSError:
            pass
    return None


@contextlib.contextmanager
def _token_auth_if_available() -> Iterator[None]:
    """Token authentication for this process while the block runs, if a token is available and
    ``RAY_AUTH_MODE`` is unset (Ray itself does this only for ``auto``; a token sent to a cluster without
    authentication is ignored)."""
    if AUTH_MODE in os.environ or token_source() is None:
        yield
        return
    try:
        from ray._raylet import Config
    except ImportError:  # a Ray without token authentication
        yield
        return
    os.environ[AUTH_MODE] = "token"
    Config.initialize("")  # Ray's config caches the mode
    try:
        yield
    finally:
        os.environ.pop(AUTH_MODE, None)
        Config.initialize("")


@contextlib.contextmanager
def _stderr_captured() -> Iterator[Any]:
    """The process's file descriptor 2 (Ray's C++ client logs each failed attempt there) into a temporary
    file for the block; yields the file."""
    with tempfile.TemporaryFile(mode="w+") as capture:
        saved = os.dup(2)
        os.dup2(capture.fileno(), 2)
        try:
            yield capture
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _refused_authentication(error: BaseException | None, logged: str) -> bool:
    """Whether connecting failed on the cluster's token check (Ray wraps its AuthenticationError in others)."""
    texts, seen = [logged], set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        texts.append(f"{type(error).__name__}: {error}")
        error = error.__cause__ or error.__context__
    return any("InvalidAuthToken" in text or "AuthenticationError" in text for text in texts)


def _auth_failure(address: str) -> str:
    """What to say when the cluster at ``address`` refused this client's token (or its lack of one)."""
    mode, source = os.environ.get(AUTH_MODE), token_source()
    if mode is not None and mode.lower() != "token":
        return (f"the Ray cluster at {address} requires token authentication but {AUTH_MODE}={mode}: unset "
                f"{AUTH_MODE} and {SET_TOKEN}")
    if source is None and mode is not None:
        return f"{AUTH_MODE}=token but no authentication token was found: {SET_TOKEN}"
    if source is None:
        return f"the Ray cluster at {address} requires an authentication token and none was found: {SET_TOKEN}"
    return f"the Ray cluster at {address} refused the authentication token from {source}: {SET_TOKEN}"


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
    logged = ""  # what Ray's C++ client wrote while connecting
    with contextlib.ExitStack() as session:
        try:
            if address is None:
                ray.init(num_cpus=max_workers or os.cpu_count() or 1, include_dashboard=False, **quiet)
            else:
                session.enter_context(_token_auth_if_available())
                with _stderr_captured() as log:
                    try:
                        ray.init(address=address, **quiet)
                    finally:
                        log.seek(0)
                        logged = log.read()
        except (ConnectionError, ValueError, RuntimeError, ray.exceptions.RayError) as error:
            if address is not None and _refused_authentication(error, logged):
                raise ConfigError(_auth_failure(address)) from None
            where = "an embedded Ray instance" if address is None else f"the Ray cluster at {address}"
            raise ConfigError(f"could not start or reach {where} ({str(error).splitlines()[0]}): check "
                              "--address (auto, host:port or ray://host:port) and that the cluster runs") from None
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
