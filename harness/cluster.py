"""Evaluation jobs on a Ray cluster (``monkeys evaluate --cluster ADDRESS``): the ``Jobs`` of
harness/evaluate.py as Ray tasks, each running its containers on the Docker engine of the node it
lands on. Imported only when a cluster is asked for, so Ray stays an optional extra (``monkeys[ray]``).

Ray does the scheduling: each task declares the CPUs and memory of one container (``Limits``), so Ray
packs nodes without oversubscribing any, retries a task whose node died (``MAX_RETRIES``), and the
driver takes results as they finish with ``ray.wait``. The driver stays the only writer of the run
store and the evaluation cache: before dispatch it reads the cache entries a job can use (under every
image id, since the node's image id is learnt there), the job measures against that snapshot exactly
as a local job measures against the cache, and returns its writes with its result; the driver makes
them, then judges. A job that dies with its node returns nothing, so its retry starts from the same
snapshot and nothing is written twice.

Not yet: a node without a task's image fails that task's jobs (an ERROR record, retried by the next
call) instead of pulling or building it; ``sample`` and ``audit-flaky`` still run locally.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Collection, Hashable, Iterable
from dataclasses import dataclass

import docker
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from harness import engine
from harness.containers import ContainerRuntime
from harness.evalcache import Applied, CacheKey, EvalCache, RawRun
from harness.evalconfig import EvalConfig
from harness.evalscript import PlanError, existing_tests_plan, plan
from harness.evaluate import Evaluator, InfraError, Measured, Prepared, prepare_task, run_job
from harness.patches import patch_hash
from harness.tasks import Task
from harness.verdict import GoldAudit, PatchRuns

MAX_RETRIES = 3
"""Times Ray reruns a job whose node or worker died (not one that raised: measuring reports
infrastructure errors as values, and anything else is a bug a rerun would repeat)."""

Entries = dict[CacheKey, tuple[Applied | None, list[RawRun]]]


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
    """An Evaluator on a Ray node: a missing image is named with the node that lacks it."""

    def image_id(self, task: Task) -> str:
        try:
            return super().image_id(task)
        except InfraError as err:
            raise InfraError(f"{err} [on Ray node {ray.util.get_node_ip_address()}: every node needs the task "
                             f"images; pulling or building them per node is not done yet]") from None


_client: docker.DockerClient | None = None


def _node_evaluator(config: EvalConfig, run: str, entries: Entries) -> NodeEvaluator:
    """An evaluator on this node's engine over a snapshot. The engine is connected once per worker
    process, which first removes containers that dead monkeys processes left on this node (a worker
    killed mid-job, a node that went down and came back)."""
    global _client
    if _client is None:
        _client = engine.connect()
        ContainerRuntime(_client, run=run).reap()
    return NodeEvaluator(_client, SnapshotCache(entries), config, run=run)


@ray.remote
def _prepare(config: EvalConfig, run: str, task: Task, entries: Entries) -> tuple[Prepared, list[CacheWrite]]:
    evaluator = _node_evaluator(config, run, entries)
    return prepare_task(evaluator, task), evaluator.cache.writes


@ray.remote
def _job(config: EvalConfig, run: str, task: Task, patch: str | None, audit: GoldAudit, baseline: PatchRuns | None,
         entries: Entries) -> tuple[Measured, list[CacheWrite]]:
    evaluator = _node_evaluator(config, run, entries)
    return run_job(evaluator, task, patch, audit, baseline), evaluator.cache.writes


@ray.remote(num_cpus=0)
def _reap(run: str) -> int:
    """Remove the containers dead monkeys processes left on this node (a node's workers die with it,
    mid-job, without removing theirs)."""
    return ContainerRuntime(engine.connect(), run=run).reap()


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
    """``Jobs`` as Ray tasks, for ``evaluate(..., jobs=RayJobs(evaluator, address))``; the driver's
    ``evaluator`` holds the evaluation cache and the configuration, and measures nothing itself."""

    def __init__(self, evaluator: Evaluator, address: str):
        self.evaluator = evaluator
        self.config = evaluator.config
        self.run = evaluator.runtime.run
        self._connected = connect(address)
        # Ray prints its messages to the driver (a task retried after its node died) on stdout, which
        # is for results (--json): while this connection lasts, they go to stderr.
        self._stdout = sys.stdout
        if self._connected:
            sys.stdout = sys.stderr
        limits = self.config.limits
        self._options = dict(num_cpus=limits.cpus, memory=memory_bytes(limits.memory), max_retries=MAX_RETRIES)
        # The window of jobs in flight follows what the cluster can run at once; Ray decides where.
        total = ray.cluster_resources()
        fits = min(total.get("CPU", 0) // limits.cpus, total.get("memory", 0) // self._options["memory"])
        self.slots = max(1, int(fits))
        self._pending: set[ray.ObjectRef] = set()

    def _entries(self, task: Task, patches: Iterable[tuple[bool, str | None]]) -> Entries:
        """The cache's entries for ``task`` under its evaluation plan (False) or its existing-tests
        plan (True) for each patch. A plan that cannot be made reads nothing: the job meets the same
        error and reports it."""
        entries: Entries = {}
        for existing, patch in patches:
            try:
                steps = existing_tests_plan(task) if existing else plan(task)
            except PlanError:
                continue
            if steps is not None:
                entries.update(self.evaluator.cache.entries(steps.digest, patch_hash(patch)))
        return entries

    def _submit(self, ref: ray.ObjectRef) -> Hashable:
        self._pending.add(ref)
        return ref

    def prepare(self, task: Task) -> Hashable:
        wanted = [(False, task.patch)] + ([(True, "")] if self.config.existing_tests else [])
        return self._submit(_prepare.options(**self._options).remote(self.config, self.run, task,
                                                                     self._entries(task, wanted)))

    def job(self, task: Task, patch: str | None, audit: GoldAudit, baseline: PatchRuns | None) -> Hashable:
        wanted = [(False, patch)] + ([(True, patch)] if self.config.existing_tests else [])
        return self._submit(_job.options(**self._options).remote(self.config, self.run, task, patch, audit, baseline,
                                                                 self._entries(task, wanted)))

    def wait(self, pending: Collection[Hashable]) -> Iterable[Hashable]:
        done, _ = ray.wait(list(pending), num_returns=1)
        return done

    def result(self, handle: Hashable) -> Prepared | Measured:
        self._pending.discard(handle)
        value, writes = ray.get(handle)
        for write in writes:
            write.apply(self.evaluator.cache)
        return value

    def close(self) -> None:
        # A job's runs reach the cache only with its result, so on an error or an interrupt the jobs in
        # flight are stopped (their containers are removed as they unwind) rather than waited for.
        pending = list(self._pending)
        for ref in pending:
            ray.cancel(ref)
        if pending:
            ray.wait(pending, num_returns=len(pending), timeout=60)
        self._pending.clear()
        self.reap()
        if self._connected:
            ray.shutdown()
            sys.stdout = self._stdout

    def reap(self) -> int:
        """Reap orphaned containers on every live node, once each: what workers that died mid-job (with
        a node that went down, or killed on a node still up) left. The containers a lost node still
        holds are reaped when it comes back, by its first job."""
        nodes = [node["NodeID"] for node in ray.nodes() if node.get("Alive")]
        refs = [_reap.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)).remote(self.run)
                for node in nodes]
        try:
            return sum(ray.get(refs, timeout=120))
        except (ray.exceptions.RayError, TimeoutError):
            return 0  # a node that left meanwhile; its containers wait for it to come back
