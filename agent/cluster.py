"""Sampling's attempts on a Ray cluster (``monkeys sample --cluster ADDRESS``): the sampler's
``Attempts`` as Ray tasks, each making its attempt in a container on the Docker engine of the node it
lands on. Imported only when a cluster is asked for, so Ray stays an optional extra (``monkeys[ray]``).

As for evaluation (harness/cluster.py): each attempt declares its container's CPUs and memory, so Ray
packs nodes without oversubscribing any; a task whose node died is rerun elsewhere by Ray; an attempt
prefers a node that already holds its task's image, and a node without it pulls or builds it. The
driver stays the only writer of the run store: its sampler threads (one per slot) each wait for one
remote attempt and record what comes back, so budgets, resume, fingerprints and the store behave as
in a local run. An attempt lost with its node, or stopped by an interrupt, returns nothing: it is
redone, and what its model calls spent is not counted (unlike a local run's abandoned tries).

The model: any endpoint every node can reach (an API, a shared vLLM), each node's workers with their
own client; or a managed server per node (``NodeServers``: llama.cpp on CPU nodes, ``vllm serve`` on
GPU nodes), each attempt talking to the server on its own node, so attempts spread over the servers as
Ray spreads them over the nodes.
"""

from __future__ import annotations

import os
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import ray

from agent.attempt import AttemptOutcome
from agent.model import Endpoint, Model, ModelConfig
from agent.sampler import AttemptJob
from agent.servers import ManagedServer, ServerError, ServerKind, ServerSpec, bundled_gguf, file_sha256
from harness.cluster import (MAX_RETRIES, ImagePlacement, ImageSource, connect, memory_bytes, node_engine, node_id,
                             on_node, reap, slots, stop)
from harness.containers import ContainerRuntime, Limits
from harness.image_names import ImageUnavailable

POLL_SECONDS = 2.0
"""How often a sampler thread waiting on a remote attempt looks at the interrupt flag (a result is
taken the moment it is ready, whatever this is; a cluster has a thread per slot, so each polls rarely)."""

_models: dict[str, Model] = {}


def _node_model(config: ModelConfig, request: dict[str, Any] | None) -> Model:
    """A client for ``config`` in this worker process, made once (its connection pool is reused by
    every attempt the worker makes), with the request shape the run settled on."""
    key = repr((config, request))
    if key not in _models:
        model = Model(config)
        if request is not None:
            model.use_request_record(request)
        _models[key] = model
    return _models[key]


@ray.remote
def _attempt(job: AttemptJob, run: str, limits: Limits, model: ModelConfig, request: dict[str, Any] | None,
             servers: dict[str, str] | None, images: ImageSource | None) -> tuple[AttemptOutcome, int, str]:
    """One attempt on this node: its outcome, its calls without usage, and the node (now holding the image)."""
    here = node_id()
    where = f"Ray node {ray.util.get_node_ip_address()}"
    client = node_engine(run)
    if images is not None:
        try:
            images(client, job.task)
        except ImageUnavailable as err:
            return job.infra_error(f"no image on {where}: {err}"), 0, here
    if servers is not None:
        if here not in servers:
            return job.infra_error(f"no model server on {where} (it joined after the run began)"), 0, here
        model = replace(model, base_url=servers[here])
    client_model = _node_model(model, request)
    with client_model.watch_usage() as gaps:
        outcome = job.run(ContainerRuntime(client, run, limits), client_model, threading.Event())
    return outcome, gaps.calls, here


@ray.remote(num_cpus=0)
class _NodeServer:
    """A managed model server on one node, living as long as this actor (its process's death kills
    the server: PR_SET_PDEATHSIG). It declares no CPUs: the node's CPUs stay for attempts, which the
    server's threads share with their containers."""

    def __init__(self, spec: ServerSpec, sha256: str | None, bundled: bool):
        if bundled:  # each node assembles the bundled GGUF from its own installed package
            spec = replace(spec, model=str(bundled_gguf().path))
        if sha256 is not None and file_sha256(Path(spec.model)) != sha256:
            raise ServerError(f"{spec.model} on Ray node {ray.util.get_node_ip_address()} is not the file the run "
                              f"serves (sha256 {sha256}); every node needs the same model file at the same path")
        self.server = ManagedServer(spec)
        self.server.start()

    def base_url(self) -> str:
        return self.server.base_url

    def preflight(self, config: ModelConfig, endpoint: Endpoint, request: dict[str, Any] | None) -> dict | None:
        model = Model(replace(config, base_url=self.server.base_url))
        if request is not None:
            model.use_request_record(request)
        model.preflight(endpoint)
        return model.request_record()

    def stop(self) -> None:
        self.server.stop()


class NodeServers:
    """One managed model server per node that runs work (a node with CPUs), started together. A vLLM
    server takes its node's GPUs (declared to Ray, so nothing else is put on them); a node without
    any cannot serve vLLM, and the run stops naming it."""

    def __init__(self, spec: ServerSpec, sha256: str | None, bundled: bool):
        nodes = {n["NodeID"]: n.get("Resources", {}) for n in ray.nodes()
                 if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) > 0}
        gpus = {node: resources.get("GPU", 0) if spec.kind is ServerKind.VLLM else 0 for node, resources in nodes.items()}
        self.actors = {node: _NodeServer.options(scheduling_strategy=on_node(node), num_gpus=gpus[node])
                       .remote(spec, sha256, bundled) for node in nodes}
        try:
            urls = ray.get([actor.base_url.remote() for actor in self.actors.values()])
        except ray.exceptions.RayActorError as err:
            self.stop()
            raise ServerError(f"a model server would not start on a Ray node: {err}") from None
        self.urls = dict(zip(self.actors, urls))

    def preflight(self, config: ModelConfig, endpoint: Endpoint, request: dict[str, Any] | None) -> dict | None:
        """The run's preflight, on one node's server: the request shape every server takes."""
        actor = next(iter(self.actors.values()))
        try:
            return ray.get(actor.preflight.remote(config, endpoint, request))
        except ray.exceptions.RayTaskError as err:
            raise err.cause from None  # ModelConfigError, ModelUnavailable: as the sampler knows them

    def stop(self) -> None:
        for actor in self.actors.values():
            try:
                ray.get(actor.stop.remote(), timeout=30)
            except ray.exceptions.RayError:
                pass  # gone with its node: its server went with its process
            ray.kill(actor)
        self.actors = {}


class RayAttempts:
    """The sampler's ``Attempts`` as Ray tasks. ``images`` maps each task to its image name (for
    placement), ``source`` gets a node the images it lacks, ``serve`` (a spec, the model file's
    sha256, whether it is the bundled GGUF) starts a managed server on every node."""

    def __init__(self, address: str, run: str, limits: Limits, images: dict[str, str], *,
                 source: ImageSource | None = None, serve: tuple[ServerSpec, str | None, bool] | None = None):
        self.run_name = run
        self.limits = limits
        self.source = source
        self._connected = connect(address)
        self._options = dict(num_cpus=limits.cpus, memory=memory_bytes(limits.memory), max_retries=MAX_RETRIES)
        self.slots = slots(limits.cpus, self._options["memory"])
        self.placement = ImagePlacement(images.values())
        self._lock = threading.Lock()
        self._in_flight: set[ray.ObjectRef] = set()
        try:
            self.servers = NodeServers(*serve) if serve is not None else None
        except BaseException:
            self.close()
            raise
        # With a server per node, a running attempt pays its node's hourly price shared by the attempts
        # that node runs; otherwise one host (the endpoint's) is shared by every slot.
        hosts = len(self.servers.urls) if self.servers else 1
        self.share = min(1.0, hosts / self.slots)

    def preflight(self, model: Model, endpoint: Endpoint) -> None:
        if self.servers is None:
            model.preflight(endpoint)
            return
        record = self.servers.preflight(model.config, endpoint, model.request_record())
        if record is not None:
            model.use_request_record(record)

    def run(self, job: AttemptJob, model: Model, abort: threading.Event) -> tuple[AttemptOutcome, int]:
        config = model.config
        options = dict(self._options)
        if self.servers is None and os.environ.get(config.api_key_env):
            # The endpoint's key reaches the node's workers as it reaches this process: in the environment.
            options["runtime_env"] = {"env_vars": {config.api_key_env: os.environ[config.api_key_env]}}
        with self._lock:
            options.update(self.placement.options(job.image))
        ref = _attempt.options(**options).remote(job, self.run_name, self.limits, config, model.request_record(),
                                                 self.servers.urls if self.servers else None, self.source)
        with self._lock:
            self._in_flight.add(ref)
        try:
            while not ray.wait([ref], timeout=POLL_SECONDS)[0]:
                if abort.is_set():
                    stop([ref])
                    return job.infra_error("interrupted"), 0
            try:
                outcome, calls, node = ray.get(ref)
            except ray.exceptions.RayError as err:  # its worker or node died past every retry
                return job.infra_error(f"the Ray task failed: {type(err).__name__}: {str(err)[:500]}"), 0
        finally:
            with self._lock:
                self._in_flight.discard(ref)
        with self._lock:
            self.placement.landed(job.image, node)
        return outcome, calls

    def close(self) -> None:
        """Stop what is still in flight and the servers, reap every node, leave the cluster."""
        with self._lock:
            in_flight = list(self._in_flight)
        stop(in_flight)
        if getattr(self, "servers", None) is not None:
            self.servers.stop()
        reap(self.run_name)
        if self._connected:
            ray.shutdown()

