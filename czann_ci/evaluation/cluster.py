"""Images as tasks on a Dask distributed cluster (the dask extra): one task per image, results gathered in
the order of the tasks. The workers read the model and image files by the same paths, so the files must
be on storage they share with this machine."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

from czann_ci.errors import UsageError, first_line
from czann_ci.extras import missing_extra

Task = TypeVar("Task")
Outcome = TypeVar("Outcome")

CONNECT_SECONDS = 30


def run_on_cluster(address: str, function: Callable[[Task], Outcome], tasks: Sequence[Task]) -> list[Outcome]:
    """``function`` applied to each task on the cluster whose scheduler listens at ``address``
    (e.g. tcp://10.0.0.5:8786)."""
    try:
        from distributed import Client
    except ImportError:
        raise missing_extra("Dask clusters (--scheduler)", "dask") from None
    _check_reachable(address)
    try:
        client = Client(address, timeout=CONNECT_SECONDS, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise UsageError(
            f"cannot reach the Dask scheduler at {address}: {first_line(exc)}", field="--scheduler"
        ) from None
    with client:
        # pure=False: two images with equal paths are still two tasks; retries stay off, since a failed
        # image fails the same way again
        futures = client.map(function, list(tasks), pure=False)
        try:
            return client.gather(futures)  # a task's CzannError is raised here as itself
        finally:
            client.cancel(futures)


def _check_reachable(address: str) -> None:
    """A TCP scheduler that does not answer is refused at once: distributed's Client would retry until
    its timeout and then print its own teardown traceback at exit."""
    import socket

    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        scheme, location = parse_address(address)
        if scheme != "tcp":
            return
        host, port = parse_host_port(location)
        socket.create_connection((host, port), timeout=CONNECT_SECONDS).close()
    except (OSError, ValueError, TypeError) as exc:
        raise UsageError(
            f"cannot reach the Dask scheduler at {address}: {first_line(exc)}", field="--scheduler"
        ) from None


def worker_memory() -> int | None:
    """On a Dask worker with a memory limit, the bytes it may still take: the limit less what the worker's
    process holds (the machine's free memory says nothing of a worker's share of it); None elsewhere."""
    if "distributed" not in sys.modules:  # not on a worker: never imported for this
        return None
    from distributed import get_worker

    try:
        worker = get_worker()
    except ValueError:
        return None
    limit = worker.memory_manager.memory_limit
    if not limit:
        return None
    import psutil  # distributed's own dependency

    return int(limit) - psutil.Process().memory_info().rss  # below 0 when over: memory.lowest clamps it
