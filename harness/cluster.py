"""Evaluation jobs on a Ray cluster (``monkeys evaluate --cluster ADDRESS``, ``audit-flaky`` too): the
``Jobs`` of harness/evaluate.py as Ray tasks, each running its containers on the Docker engine of the
node it lands on. Imported only when a cluster is asked for, so Ray stays an optional extra
(``monkeys[ray]``); agent/cluster.py runs sampling's attempts the same way.

Ray does the scheduling: each task declares the CPUs and memory of one container (``Limits``), so Ray
packs nodes without oversubscribing any, retries a task whose node died (``MAX_RETRIES``), and the
driver takes results as they finish with ``ray.wait``. The driver stays the only writer of the run
store and the evaluation cache: before dispatch it reads the cache entries a job can use (under every
image id, since the node's image id is learnt there), the job measures against that snapshot exactly
as a local job measures against the cache, and returns its writes with its result; the driver makes
them, then judges. A job that dies with its node returns nothing, so its retry starts from the same
snapshot and nothing is written twice.

Images: a job prefers a node that already holds its task's image (``ImagePlacement``: Ray's soft node
affinity, spilling to another node when that one is busy); a node without it gets it through the
``ImageSource`` the command hands over (images/provision.py: pulled from ``--registry`` or built from
the task's recipe), so every node agrees on what an image is.
"""

from __future__ import annotations

import itertools
import re
import sys
from collections.abc import Callable, Collection, Hashable, Iterable
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from harness import engine
from harness.containers import ContainerRuntime
from harness.evalcache import Applied, CacheKey, EvalCache, RawRun
from harness.evalconfig import EvalConfig
from harness.evalscript import PlanError, existing_tests_plan, plan
from harness.evaluate import Evaluator, InfraError, Reads, Work
from harness.image_names import ImageUnavailable, image_name
from harness.patches import patch_hash
from harness.tasks import Task

MAX_RETRIES = 3
"""Times Ray reruns a job whose node or worker died (not one that raised: measuring reports
infrastructure errors as values, and anything else is a bug a rerun would repeat)."""

Entries = dict[CacheKey, tuple[Applied | None, list[RawRun]]]

ImageSource = Callable[[docker.DockerClient, Task], str]
"""Gets a task's image onto a node's engine and names it, or raises ``ImageUnavailable`` saying why
(images/provision.py's ``NodeImages``; harness builds on no image code, so the command hands it over)."""


@dataclass(frozen=True)
class CacheWrite:
    """One write a job made to its snapshot, for the driver to make to the evaluation cache."""

    method: str
    """``add_run``, ``record_apply`` or ``drop_runs``: the EvalCache method that makes it."""
    key: CacheKey
    value: RawRun | Applied | None = None

    def apply(self, cache: EvalCache) -> None:
        args = () if self.value is None else (self.value,)
        getattr(cache, self.method)(self.key, *args)


class SnapshotCache:
    """The evaluation cache as a job on another node sees it: the entries the driver read before
    dispatch, and the writes the job made since, in order (``writes``)."""

    def __init__(self, entries: Entries):
        self._applied = {key: applied for key, (applied, _) in entries.items() if applied is not None}
        self._runs = {key: list(runs) for key, (_, runs) in entries.items()}
        self.writes: list[CacheWrite] = []

    def runs(self, key: CacheKey) -> list[RawRun]:
        return list(self._runs.get(key, []))

    def add_run(self, key: CacheKey, run: RawRun) -> None:
        self._runs.setdefault(key, []).append(run)
        self.writes.append(CacheWrite("add_run", key, run))

    def drop_runs(self, key: CacheKey) -> None:
        self._runs.pop(key, None)
        self.writes.append(CacheWrite("drop_runs", key))

    def applied(self, key: CacheKey) -> Applied | None:
        return self._applied.get(key)

    def record_apply(self, key: CacheKey, applied: Applied) -> None:
        self._applied[key] = applied
        self.writes.append(CacheWrite("record_apply", key, applied))


class NodeEvaluator(Evaluator):
    """An Evaluator on a Ray node: a task's image is got onto this node first (``images``), and one
    that cannot be had is named with the node that lacks it."""

    def __init__(self, client: docker.DockerClient, cache: SnapshotCache, config: EvalConfig, run: str,
                 images: ImageSource | None):
        super().__init__(client, cache, config, run=run)
        self.images = images

    def image_id(self, task: Task) -> str:
        where = f"on Ray node {ray.util.get_node_ip_address()}"
        if self.images is not None and image_name(task) not in self._image_ids:
            try:
                self.images(self.client, task)
            except ImageUnavailable as err:
                raise InfraError(f"{task.instance_id}: no image {where}: {err}") from None
        try:
            return super().image_id(task)
        except InfraError as err:
            raise InfraError(f"{err} [{where}]") from None


_client: docker.DockerClient | None = None


def node_engine(run: str) -> docker.DockerClient:
    """This node's engine, connected once per worker process, which first removes containers that dead
    monkeys processes left on this node (a worker killed mid-job, a node that went down and came back)."""
    global _client
    if _client is None:
        _client = engine.connect()
        ContainerRuntime(_client, run=run).reap()
    return _client


def node_id() -> str:
    return ray.get_runtime_context().get_node_id()


@ray.remote
def _call(config: EvalConfig, run: str, images: ImageSource | None, work: Work, task: Task, args: tuple,
          entries: Entries) -> tuple[Any, list[CacheWrite], str]:
    """``work(evaluator, task, *args)`` on this node, over a snapshot of the cache: its result, the
    writes it made, and the node it ran on (which now holds the task's image)."""
    evaluator = NodeEvaluator(node_engine(run), SnapshotCache(entries), config, run, images)
    return work(evaluator, task, *args), evaluator.cache.writes, node_id()


@ray.remote(num_cpus=0)
def _reap(run: str) -> int:
    """Remove the containers dead monkeys processes left on this node (a node's workers die with it,
    mid-job, without removing theirs)."""
    return ContainerRuntime(engine.connect(), run=run).reap()


@ray.remote(num_cpus=0)
def _images_here(names: list[str]) -> list[str]:
    """Which of ``names`` this node's engine holds."""
    client = engine.connect()
    here = []
    for name in names:
        try:
            client.images.get(name)
            here.append(name)
        except docker.errors.ImageNotFound:
            pass
    return here


def on_node(node: str, soft: bool = False) -> NodeAffinitySchedulingStrategy:
    """Run on ``node``; ``soft``: rather there, but elsewhere when it is busy or gone."""
    return NodeAffinitySchedulingStrategy(node, soft=soft, _spill_on_unavailable=soft)


def alive_nodes() -> list[str]:
    return [node["NodeID"] for node in ray.nodes() if node.get("Alive")]


class ImagePlacement:
    """Which nodes hold which images, so work goes where its image already is. Asked of every node
    once, then learnt from where work ran (the node got the image to run it). Work for an image no node
    holds goes where Ray's default policy puts it; work for one held by several takes them in turn."""

    def __init__(self, names: Iterable[str]):
        names = sorted(set(names))
        nodes = alive_nodes()
        held = ray.get([_images_here.options(scheduling_strategy=on_node(node)).remote(names) for node in nodes])
        self.holders: dict[str, list[str]] = {}
        for node, here in zip(nodes, held):
            for name in here:
                self.holders.setdefault(name, []).append(node)
        self._turns: dict[str, itertools.count] = {}

    def options(self, image: str) -> dict[str, Any]:
        """Ray task options that prefer a node holding ``image``."""
        holders = self.holders.get(image)
        if not holders:
            return {}
        turn = next(self._turns.setdefault(image, itertools.count()))
        return {"scheduling_strategy": on_node(holders[turn % len(holders)], soft=True)}

    def landed(self, image: str, node: str) -> None:
        if node not in self.holders.setdefault(image, []):
            self.holders[image].append(node)


def memory_bytes(size: str) -> int:
    """Docker's memory notation (``4g``, ``512m``, ``1024k``, ``100b`` or plain bytes) in bytes."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([bkmg]?)b?\s*", size.lower())
    if not found:
        raise ValueError(f"not a memory size: {size!r} (expected e.g. 4g or 512m)")
    number, unit = found.groups()
    return int(float(number) * 1024 ** "bkmg".index(unit or "b"))


def connect(address: str) -> bool:
    """Join the Ray cluster at ``address`` (``auto``: the one this machine belongs to). True when this
    call connected (and so should disconnect), False when this process already was connected."""
    if ray.is_initialized():
        return False
    ray.init(address=address, log_to_driver=False, configure_logging=False)
    return True


class RayJobs:
    """``Jobs`` as Ray tasks, for ``evaluate(..., jobs=RayJobs(evaluator, address, tasks))``; the
    driver's ``evaluator`` holds the evaluation cache and the configuration, and measures nothing
    itself. ``images`` gets a node the images it lacks (None: a node without one reports an error)."""

    def __init__(self, evaluator: Evaluator, address: str, tasks: Iterable[Task], images: ImageSource | None = None):
        self.evaluator = evaluator
        self.config = evaluator.config
        self.run = evaluator.runtime.run
        self.images = images
        self._connected = connect(address)
        # Ray prints its messages to the driver (a task retried after its node died) on stdout, which
        # is for results (--json): while this connection lasts, they go to stderr.
        self._stdout = sys.stdout
        if self._connected:
            sys.stdout = sys.stderr
        limits = self.config.limits
        self._options = dict(num_cpus=limits.cpus, memory=memory_bytes(limits.memory), max_retries=MAX_RETRIES)
        self.slots = slots(limits.cpus, self._options["memory"])
        self.placement = ImagePlacement(image_name(t) for t in tasks)
        self._pending: dict[ray.ObjectRef, str] = {}  # a job in flight -> its task's image

    def _entries(self, task: Task, reads: Reads) -> Entries:
        """The cache's entries for ``task`` under its evaluation plan (False) or its existing-tests
        plan (True) for each patch. A plan that cannot be made reads nothing: the job meets the same
        error and reports it."""
        entries: Entries = {}
        for existing, patch in reads:
            try:
                steps = existing_tests_plan(task) if existing else plan(task)
            except PlanError:
                continue
            if steps is not None:
                entries.update(self.evaluator.cache.entries(steps.digest, patch_hash(patch)))
        return entries

    def submit(self, work: Work, task: Task, *args: Any, reads: Reads) -> Hashable:
        image = image_name(task)
        ref = _call.options(**self._options, **self.placement.options(image)).remote(
            self.config, self.run, self.images, work, task, args, self._entries(task, reads))
        self._pending[ref] = image
        return ref

    def wait(self, pending: Collection[Hashable]) -> Iterable[Hashable]:
        done, _ = ray.wait(list(pending), num_returns=1)
        return done

    def result(self, handle: Hashable) -> Any:
        image = self._pending.pop(handle)
        value, writes, node = ray.get(handle)
        for write in writes:
            write.apply(self.evaluator.cache)
        self.placement.landed(image, node)
        return value

    def close(self) -> None:
        # A job's runs reach the cache only with its result, so on an error or an interrupt the jobs in
        # flight are stopped (their containers are removed as they unwind) rather than waited for.
        stop(list(self._pending))
        self._pending.clear()
        reap(self.run)
        if self._connected:
            ray.shutdown()
            sys.stdout = self._stdout


def slots(cpus: float, memory: int) -> int:
    """How many tasks of ``cpus`` CPUs and ``memory`` bytes the cluster runs at once (at least one):
    the window of work in flight follows it; Ray decides where each runs."""
    total = ray.cluster_resources()
    return max(1, int(min(total.get("CPU", 0) // cpus, total.get("memory", 0) // memory)))


def stop(refs: list[ray.ObjectRef]) -> None:
    """Cancel tasks in flight and give them a minute to unwind (their containers are removed as they do)."""
    for ref in refs:
        ray.cancel(ref)
    if refs:
        ray.wait(refs, num_returns=len(refs), timeout=60)


def reap(run: str) -> int:
    """Reap orphaned containers of ``run`` on every live node, once each: what workers that died
    mid-job (with a node that went down, or killed on a node still up) left. The containers a lost
    node still holds are reaped when it comes back, by the first job it runs (``node_engine``)."""
    refs = [_reap.options(scheduling_strategy=on_node(node)).remote(run) for node in alive_nodes()]
    try:
        return sum(ray.get(refs, timeout=120))
    except (ray.exceptions.RayError, TimeoutError):
        return 0  # a node that left meanwhile; its containers wait for it to come back
