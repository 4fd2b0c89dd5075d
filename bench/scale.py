"""The driver at the paper's scale, what Ray adds to a real evaluation, and what the Lite run needs.

    .venv/bin/python bench/scale.py [--small 750] [--large 75000] [--tasks 300] [--real 200 | --skip-real]
                                    [--attempt-seconds 600] [--eval-seconds S] [--node-slots 16] [--target-hours 24]
                                    [--save FILE | --replay FILE]

1. Stand-ins (no container, no model). For ``--small`` and ``--large`` attempts over ``--tasks`` tasks
   (k = attempts / tasks; 750 over 300 is made as a user extends a run, k=2 then a third attempt for
   half the tasks), each phase in a fresh process, so that its peak memory is its own: the real
   ``Sampler`` with ``InstantAttempts`` (a benchmark-only stand-in for containers and model: each
   attempt returns at once with a ~2 KB patch, usage in a real attempt's range and a short trajectory)
   into a real run store; then the real ``evaluate`` of the run's finished attempts, loaded as
   ``monkeys evaluate --run`` loads them, with ``InstantJobs`` (a benchmark-only stand-in for the
   evaluation jobs: each returns at once the runs a container would have, about 30% resolving); then
   the real ``monkeys report`` command on the run. The tasks are the bundled suite's non-flaky rows,
   repeated under new ids. Per size: records each driver phase commits per second, each phase's peak
   resident memory, the run folder (store, write-ahead log, trajectories, evidence), and ``monkeys
   report`` seconds.
2. Real containers (``--real N`` evaluations; ``--skip-real`` to skip; needs `monkeys images build`):
   N distinct patches over the bundled suite's non-flaky tasks (half fixing their task), judged with
   the existing tests too (as ``monkeys evaluate --run`` judges a sampling run), each time with a fresh
   evaluation cache: once with local threads (``--workers``, default the CPU count) and once through
   a one-machine Ray cluster (``ray.cluster_utils.Cluster``, a head node with as many slots as the
   local run has workers). Wall seconds of each and their ratio (goal < 1.10), and the driver's CPU.
3. Projection for the paper's Lite run (``--large`` attempts, each sampled and evaluated) from the
   figures above and the stated assumptions: node count for ``--target-hours``, the wall time at that
   count, and the cluster size at which the driver saturates (records it commits per second x one
   record's slot-seconds). ``--save`` keeps the measured figures; ``--replay`` projects from them again.

The last lines are the ratios: each stand-in figure at ``--large`` over the same at ``--small`` (100x
the records at the defaults), then Ray's wall over the local wall.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

from agent.attempt import AttemptLimits, AttemptOutcome, ExitReason
from agent.model import Endpoint, Model, ModelConfig
from agent.sampler import AttemptJob, SampleConfig, Sampler
from harness.evalcache import Applied, EvalCache
from harness.evalconfig import EvalConfig
from harness.evalscript import ApplyMethod, TestRun, read_run
from harness.evaluate import Evaluator, evaluate, prepare_task
from harness.predictions import Prediction
from harness.scores.prices import TokenPrice, Usage, price_dict, token_cost
from harness.store import STORE_FILE, RunStore
from harness.tasks import Task, load_tasks, parse_row
from harness.verdict import PatchRuns, audit_from_runs

RUN = "scale"
PRICE = TokenPrice(0.15, 0.6, 0.075, source="bench/scale.py (a small hosted model's list price)")
RESOLVED_SHARE = 0.3
"""Of the stand-in's patches, about this many resolve their task (picked by a checksum of the patch)."""


def peak_mib() -> float:
    """This process's peak resident memory so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def stand_in_patch(rng: random.Random, instance_id: str, index: int, size: int = 2048) -> str:
    """A unified diff of about ``size`` bytes, distinct per attempt (as bench/store_scale.py's, which
    this does not import: it loads the report's scipy, which a sampling or evaluating driver does not)."""
    path = f"src/{instance_id}.py"
    lines = [f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n@@ -1,40 +1,40 @@\n"]
    while sum(map(len, lines)) < size:
        lines.append(f"+    value_{index}_{rng.getrandbits(48):012x} = compute(value, {rng.randint(0, 10**6)})\n")
    return "".join(lines)


def stand_in_tasks(count: int) -> list[Task]:
    """``count`` tasks: the bundled suite's non-flaky rows in turn, each under a new instance id (so
    the evaluation's plans, parsers and guards read real rows)."""
    rows = [t.to_row() for t in load_tasks().tasks if not t.flaky]
    return [parse_row({**rows[i % len(rows)], "instance_id": f"{rows[i % len(rows)]['instance_id']}-x{i:04d}"},
                      "bench/scale.py", i + 1) for i in range(count)]


# -- benchmark-only stand-ins ---------------------------------------------------------------------


class InstantAttempts:
    """Benchmark-only stand-in for ``agent.sampler.Attempts``: no container, no model. Each attempt
    returns at once, with a ~2 KB synthetic patch, usage and times in a real attempt's range, and a
    short trajectory (6 messages, ~2 KB; a real one is often tens of KB), so the driver does everything
    it does for a real attempt (trajectory file, run store row, budgets, progress) and nothing else."""

    def __init__(self, slots: int):
        self.slots = slots
        self.share = 1.0 / slots

    def preflight(self, model: Model, endpoint: Endpoint) -> None:
        pass  # no model to ask

    def run(self, job: AttemptJob, model: Model, abort: threading.Event) -> tuple[AttemptOutcome, int]:
        rng = random.Random(job.seed)
        task = job.task
        patch = stand_in_patch(rng, task.instance_id, job.index)
        usage = Usage(rng.randint(10**4, 10**5), 0, rng.randint(10**3, 10**4))
        commands = ["grep -rn 'def ' src | head -50", "submit"]
        trajectory = [{"role": "system", "content": "You are a software engineer fixing an issue.", "t": 0.0},
                      {"role": "user", "content": task.problem_statement, "t": 0.0}]
        for n, command in enumerate(commands):
            trajectory.append({"role": "assistant", "content": f"Next:\n```bash\n{command}\n```", "t": n + 0.5,
                               "tokens": {"input": usage.input_tokens // 4, "output": usage.output_tokens // 4}})
            trajectory.append({"role": "user", "content": f"exit code 0\n{patch[:300]}", "t": n + 1.0,
                               "command": command, "exit_code": 0, "seconds": 0.4})
        wall = rng.uniform(60, 900)
        outcome = AttemptOutcome(task.instance_id, job.index, job.seed, ExitReason.SUBMITTED, patch, usage,
                                 token_cost(usage, PRICE), len(commands), 0, wall, wall * 0.6, wall * 0.3,
                                 trajectory=trajectory, patch_base=task.base_commit)
        return outcome, 0


def _pytest_log(task: Task, fixed: bool) -> str:
    """``pytest -rA`` output for ``task``'s tests: all passing, or its FAIL_TO_PASS tests failing."""
    lines = ["============================= test session starts ==============================",
             f"collected {len(task.fail_to_pass) + len(task.pass_to_pass)} items", "",
             "=========================== short test summary info ============================"]
    lines += [f"PASSED {t}" for t in task.pass_to_pass]
    lines += [f"PASSED {t}" if fixed else f"FAILED {t} - AssertionError: assert 9 == 10" for t in task.fail_to_pass]
    return "\n".join(lines) + "\n"


class InstantJobs:
    """Benchmark-only stand-in for ``harness.evaluate.Jobs``: no container. A task's preparation
    returns a gold audit of 5 passing runs (and the baseline of its existing tests); a job returns one
    run of its patch, applied with ``git apply``, resolving for about ``RESOLVED_SHARE`` of patches,
    and one run of the existing tests, as a container's runs would come back. The logs are made once per task, so the driver's time
    is its own: judging, evidence, commits."""

    def __init__(self, slots: int):
        self.slots = slots
        self._runs: dict[tuple[str, bool], TestRun] = {}
        self._done: dict[int, object] = {}
        self._next = 0

    def _run(self, task: Task, fixed: bool) -> TestRun:
        key = (task.instance_id, fixed)
        if key not in self._runs:
            self._runs[key] = read_run(task, _pytest_log(task, fixed), 0 if fixed else 1)
        return self._runs[key]

    def _measured(self, run: TestRun) -> PatchRuns:
        return PatchRuns(applied=Applied(ApplyMethod.GIT_APPLY, "Checking patch... Applied patch cleanly."),
                         runs=[run], used=1, new_runs=1, test_seconds=3.0, seconds=4.0, used_container=True,
                         run_seconds=[3.0])

    def submit(self, work, task: Task, *args, reads) -> int:
        if work is prepare_task:
            gold = self._run(task, True)
            result = (audit_from_runs(task, [gold] * 5, [3.0] * 5), 6, self._measured(gold))
        else:  # run_job(task, patch, audit, baseline)
            patch = args[0]
            fixed = zlib.crc32(patch.encode()) % 100 < RESOLVED_SHARE * 100
            result = (self._measured(self._run(task, fixed)), True, self._measured(self._run(task, True)))
        self._next += 1
        self._done[self._next] = result
        return self._next

    def wait(self, pending):
        return list(pending)

    def result(self, handle: int):
        return self._done.pop(handle)

    def close(self) -> None:
        pass


# -- the phases, each in its own process ----------------------------------------------------------


def phase_sample(root: Path, attempts: int, tasks: int, slots: int) -> dict:
    """The real Sampler with InstantAttempts into a fresh run store under ``root``. A count that is not
    a multiple of ``tasks`` is made as a user would extend a run: a second call raising k for the first
    tasks (750 over 300 tasks: k=2 for all, then a third attempt for 150 of them)."""
    from agent.prompts import Templates
    from agent.scaffolds import BashScaffold

    chosen = stand_in_tasks(tasks)
    k, extra = divmod(attempts, tasks)
    calls = [(chosen, k)] + ([(chosen[:extra], k + 1)] if extra else [])
    model_config = ModelConfig(name="bench-stand-in", base_url="http://127.0.0.1:9/v1")
    templates = Templates.load("bash")
    store = RunStore(RUN, root=root)
    started = time.perf_counter()
    done = 0
    for some, k in calls:
        config = SampleConfig(run=RUN, k=k, scaffold="bash", model={**model_config.sampling(), "endpoint": "chat"},
                              limits=AttemptLimits(), templates_digest=templates.digest(), workers=slots,
                              price=price_dict(PRICE))
        sampler = Sampler(config, some, {t.instance_id: "bench-stand-in:none" for t in some}, runtime=None,
                          model=Model(model_config), scaffold=BashScaffold(), templates=templates, price=PRICE,
                          store=store, full_config={"run": RUN, "k": k, "tasks": "bench/scale.py"},
                          attempts=InstantAttempts(slots))
        sampler.open_run()
        done += sampler.run().done
        sampler.close()
    seconds = time.perf_counter() - started
    store.close()
    assert done == attempts, done
    return {"records": done, "seconds": seconds, "peak_mib": peak_mib()}


def phase_evaluate(root: Path, tasks: int, slots: int) -> dict:
    """The real evaluation of the run's finished attempts, loaded as ``monkeys evaluate --run`` loads
    them, with InstantJobs; the run folder's sizes with the store still open (its write-ahead log too)."""
    from harness.predictions import StoredPredictions

    chosen = stand_in_tasks(tasks)
    started = time.perf_counter()
    store = RunStore(RUN, root=root)
    predictions = StoredPredictions(store)
    config = EvalConfig(workers=slots, existing_tests=True)  # as `monkeys evaluate --run` judges a sampling run
    evaluator = Evaluator(None, EvalCache(root / "evaluations.sqlite"), config, run=RUN)
    result = evaluate(evaluator, chosen, predictions, store, from_attempts=True, jobs=InstantJobs(slots))
    seconds = time.perf_counter() - started
    peak = peak_mib()  # before the folders are walked: that is the bench's doing, not the driver's
    sizes = folder_sizes(store.dir)
    store.close()
    evaluator.cache.close()
    resolved = sum(r.resolved for r in result.records)
    assert len(result.records) == len(predictions) and result.report["error_instances"] == 0
    return {"records": len(result.records), "resolved": resolved, "seconds": seconds, "peak_mib": peak,
            "sizes": sizes}


def phase_report(root: Path) -> dict:
    """``monkeys report RUN`` itself (its HTML and summary written beside the store)."""
    from monkeys import cli

    os.environ["MONKEYS_RUNS"] = str(root)
    started = time.perf_counter()
    code = cli.main(["report", RUN])
    seconds = time.perf_counter() - started
    assert code == 0, code
    return {"seconds": seconds, "peak_mib": peak_mib()}


def folder_sizes(run_dir: Path) -> dict[str, dict[str, int]]:
    """Bytes (apparent and allocated on disk) and files of the store, its log, trajectories and evidence."""
    sizes = {}
    for name, paths in (("store", [run_dir / STORE_FILE]), ("wal", [run_dir / f"{STORE_FILE}-wal"]),
                        ("trajectories", _files(run_dir / "trajectories")), ("evals", _files(run_dir / "evals"))):
        total = {"bytes": 0, "disk": 0, "files": 0}
        for path in paths:
            if os.path.isfile(path):
                stat = os.stat(path)
                total["bytes"] += stat.st_size
                total["disk"] += stat.st_blocks * 512
                total["files"] += 1
        sizes[name] = total
    return sizes


def _files(folder: Path):
    """Every file under ``folder``, one at a time (hundreds of thousands at the large size)."""
    for parent, _, names in os.walk(folder):
        for name in names:
            yield os.path.join(parent, name)


# -- real containers, locally and through Ray -----------------------------------------------------


def descendants_cpu() -> float:
    """CPU seconds of every live process descended from this one (a local Ray cluster's daemons and
    workers, which ``getrusage`` does not see until they are reaped)."""
    parent_of, cpu = {}, {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parent_of[int(entry.name)] = int(fields[1])
            cpu[int(entry.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    total, me = 0.0, os.getpid()
    for pid in cpu:
        up = parent_of.get(pid)
        while up and up != me:
            up = parent_of.get(up)
        total += cpu[pid] if up == me else 0.0
    return total


def phase_real(root: Path, count: int, workers: int, ray_first: bool = False) -> dict:
    """``count`` distinct patches over the bundled non-flaky tasks, evaluated locally and through a
    one-machine Ray cluster, each with a fresh evaluation cache."""
    from ray.cluster_utils import Cluster

    from evaluate import variant  # bench/evaluate.py: a patch plus a new file, a distinct job that changes no test
    from harness import engine
    from harness.cluster import RayJobs, memory_bytes
    from harness.containers import RUN_LABEL
    from harness.image_names import image_name

    tasks = [t for t in load_tasks().tasks if not t.flaky]
    client = engine.connect()
    missing = [image_name(t) for t in tasks if not client.images.list(name=image_name(t))]
    if missing:
        sys.exit(f"images missing ({', '.join(missing[:3])} ...): run .venv/bin/monkeys images build first")
    preds = [Prediction(t.instance_id, "bench", variant(t.patch if n % 2 == 0 else "", n), n // len(tasks), "bench")
             for n in range(count) for t in [tasks[n % len(tasks)]]]
    # Existing tests too, as `monkeys evaluate --run` judges a sampling run: two runs per patch.
    config = EvalConfig(workers=workers, existing_tests=True)
    out = {}
    for mode in ("ray", "local") if ray_first else ("local", "ray"):
        run = f"scale-real-{mode}-{os.getpid()}"
        evaluator = Evaluator(client, EvalCache(root / f"cache-{mode}.sqlite"), config, run=run)
        store = RunStore(run, root=root)
        cluster, connect_seconds = None, 0.0
        try:
            if mode == "ray":
                # As many slots as the local run has workers: each job declares one container's CPUs and memory.
                cluster = Cluster(initialize_head=True, head_node_args={
                    "num_cpus": workers * config.limits.cpus, "memory": workers * memory_bytes(config.limits.memory),
                    "object_store_memory": 256 * 2**20, "include_dashboard": False})
                cluster.wait_for_nodes()
                started = time.perf_counter()
                jobs = RayJobs(evaluator, cluster.address, tasks)
                connect_seconds = time.perf_counter() - started
                assert jobs.slots == workers, jobs.slots
            else:
                jobs = None
            cpu = resource.getrusage(resource.RUSAGE_SELF)
            started = time.perf_counter()
            ray_cpu = descendants_cpu()
            result = evaluate(evaluator, tasks, preds, store, jobs=jobs)
            seconds = time.perf_counter() - started
            after = resource.getrusage(resource.RUSAGE_SELF)
            ray_cpu = descendants_cpu() - ray_cpu
        finally:
            store.close()
            evaluator.cache.close()
            if cluster is not None:
                cluster.shutdown()
        left = client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run}"})
        assert not left, f"{len(left)} containers of {run} left"
        errors = [r.error for r in result.records if r.error and r.status == "error"]
        assert not errors, errors[:3]
        fresh = [r for r in result.records if r.new_test_runs]
        out[mode] = {"seconds": seconds, "connect_seconds": connect_seconds, "evaluations": len(result.records),
                     "test_runs": result.report["monkeys"]["test_runs_executed"],
                     "audit_runs": result.report["monkeys"]["audit_runs_executed"],
                     "driver_cpu": (after.ru_utime + after.ru_stime) - (cpu.ru_utime + cpu.ru_stime),
                     "ray_cpu": ray_cpu,
                     "container_seconds": statistics.median(r.test_seconds + r.overhead_seconds for r in fresh),
                     "verdicts": sorted([r.instance_id, r.index, r.resolved] for r in result.records)}
    assert out["ray"]["verdicts"] == out["local"]["verdicts"], "Ray and local verdicts differ"
    for mode in out:
        out[mode]["resolved"] = sum(v[2] for v in out[mode].pop("verdicts"))
    return out


# -- the parent: phases in fresh processes, then the figures --------------------------------------


def child(phase: str, root: Path, *extra: str) -> dict:
    """Run one phase in a fresh process; its result (the process's own figures)."""
    result = root.parent / f"{root.name}-{phase}.json"
    done = subprocess.run([sys.executable, __file__, "--phase", phase, "--root", str(root), "--result", str(result),
                           *extra], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"phase {phase} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return json.loads(result.read_text())


def stand_in(n: int, tasks: int, slots: int, where: Path) -> dict:
    root = where / f"runs-{n}"
    common = ("--tasks", str(tasks), "--slots", str(slots))
    figures = {"sample": child("sample", root, "--attempts", str(n), *common),
               "evaluate": child("evaluate", root, *common),
               "report": child("report", root)}
    figures["driver_peak_mib"] = max(figures["sample"]["peak_mib"], figures["evaluate"]["peak_mib"])
    return figures


def mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB"


def describe(n: int, f: dict) -> str:
    s, e, r = f["sample"], f["evaluate"], f["report"]
    sizes = e["sizes"]
    return (f"{n:>7} attempts: sampling {s['records'] / s['seconds']:,.0f} records/s ({s['seconds']:.1f} s, peak "
            f"{s['peak_mib']:.0f} MiB); evaluating {e['records'] / e['seconds']:,.0f} records/s ({e['seconds']:.1f} s, "
            f"peak {e['peak_mib']:.0f} MiB, {e['resolved']} resolved); store {mib(sizes['store']['bytes'])} + log "
            f"{mib(sizes['wal']['bytes'])}, trajectories {mib(sizes['trajectories']['disk'])} on disk "
            f"({sizes['trajectories']['files']} files), evidence {mib(sizes['evals']['disk'])} on disk "
            f"({sizes['evals']['files']} files); monkeys report {r['seconds']:.1f} s (peak {r['peak_mib']:.0f} MiB)")


def run_dir_bytes(f: dict) -> dict[str, int]:
    sizes = f["evaluate"]["sizes"]
    return {"store": sizes["store"]["bytes"] + sizes["wal"]["bytes"], "trajectories": sizes["trajectories"]["disk"],
            "evals": sizes["evals"]["disk"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=750, help="attempts in the baseline run (default 750)")
    parser.add_argument("--large", type=int, default=75_000, help="attempts in the large run (default 75,000)")
    parser.add_argument("--tasks", type=int, default=300, help="tasks the attempts spread over (default 300)")
    parser.add_argument("--slots", type=int, default=8,
                        help="attempts and evaluation jobs in flight in the stand-in runs (default 8)")
    parser.add_argument("--real", type=int, default=200, help="real evaluations, locally and through Ray (default 200)")
    parser.add_argument("--skip-real", action="store_true", help="skip the real containers")
    parser.add_argument("--ray-first", action="store_true",
                        help="evaluate through Ray before locally (the first run meets a colder engine and page cache)")
    parser.add_argument("--workers", type=int, default=os.cpu_count(),
                        help="local workers and Ray slots for the real part (default: the CPU count)")
    parser.add_argument("--attempt-seconds", type=float, default=600.0,
                        help="projection: slot-seconds of one agent attempt (default 600, a typical 30-step attempt)")
    parser.add_argument("--eval-seconds", type=float, default=None,
                        help="projection: slot-seconds of one evaluation (default: the real part's median, "
                             "else 120, a typical SWE-bench Lite test run in a fresh container)")
    parser.add_argument("--node-slots", type=int, default=16,
                        help="projection: attempts or evaluations at once per node (default 16: 32 cores, 2 per container)")
    parser.add_argument("--target-hours", type=float, default=24.0, help="projection: wall time wanted (default 24)")
    parser.add_argument("--save", type=Path, help="also write the measured figures to this JSON file")
    parser.add_argument("--replay", type=Path,
                        help="print from figures --save wrote, measuring nothing (to project with other assumptions)")
    parser.add_argument("--phase", choices=["sample", "evaluate", "report", "real"], help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--attempts", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.phase:
        import monkeys.cli  # noqa: F401  (what a `monkeys` driver process holds before its command runs)

        result = {"sample": lambda: phase_sample(args.root, args.attempts, args.tasks, args.slots),
                  "evaluate": lambda: phase_evaluate(args.root, args.tasks, args.slots),
                  "report": lambda: phase_report(args.root),
                  "real": lambda: phase_real(args.root, args.real, args.workers, args.ray_first)}[args.phase]()
        args.result.write_text(json.dumps(result))
        return

    if args.replay:
        saved = json.loads(args.replay.read_text())
        figures, real = {int(n): f for n, f in saved["figures"].items()}, saved["real"]
        args.small, args.large = sorted(figures)
    else:
        figures, real = measure(args)
        if args.save:
            args.save.write_text(json.dumps({"figures": figures, "real": real}, indent=1))
    if args.replay:  # measure() printed these as it went
        for n in (args.small, args.large):
            print(describe(n, figures[n]))
        for line in describe_real(real):
            print(line)
    project(args, figures, real)


def describe_real(real: dict | None) -> list[str]:
    return [f"real, {mode:>5}: {r['evaluations']} evaluations ({r['resolved']} resolved) in {r['seconds']:.1f} s "
            f"at {r['slots']} at once ({r['seconds'] / r['evaluations']:.3f} s each; {r['test_runs']} test "
            f"runs, and {r['audit_runs']} for the gold audits and baselines); container seconds per "
            f"evaluation (median) {r['container_seconds']:.2f}; driver CPU {r['driver_cpu']:.1f} s"
            + (f", Ray's daemons and workers {r['ray_cpu']:.1f} s; joining the cluster "
               f"{r['connect_seconds']:.1f} s (not counted)" if mode == "ray" else "")
            for mode, r in (real or {}).items()]


def measure(args) -> tuple[dict[int, dict], dict | None]:
    """The stand-in figures at both sizes and the real part's, each phase in a fresh process."""
    print(f"stand-ins: {args.small} and {args.large} attempts over {args.tasks} tasks, {args.slots} slots; "
          f"this machine: {os.cpu_count()} CPUs, {os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.0f} GiB",
          flush=True)
    figures, real = {}, None
    with tempfile.TemporaryDirectory(prefix="monkeys-scale-") as tmp:
        for n in (args.small, args.large):
            figures[n] = stand_in(n, args.tasks, args.slots, Path(tmp))
            print(describe(n, figures[n]), flush=True)
            shutil.rmtree(Path(tmp) / f"runs-{n}")
        if not args.skip_real:
            real = child("real", Path(tmp) / "real", "--real", str(args.real), "--workers", str(args.workers),
                         *(["--ray-first"] if args.ray_first else []))
            for mode in real:
                real[mode]["slots"] = args.workers
            print("\n".join(describe_real(real)), flush=True)
    return figures, real


def project(args, figures: dict[int, dict], real: dict | None) -> None:
    """The projection for the Lite run, then the ratios (the last lines)."""
    small, large = figures[args.small], figures[args.large]
    sampling_rate = large["sample"]["records"] / large["sample"]["seconds"]
    evaluating_rate = large["evaluate"]["records"] / large["evaluate"]["seconds"]
    ray_ratio = real["ray"]["seconds"] / real["local"]["seconds"] if real else 1.0
    eval_seconds = args.eval_seconds or (real["local"]["container_seconds"] if real else 120.0)

    # Projection: every attempt sampled then evaluated, one slot each, on nodes of --node-slots slots.
    # Ray is taken to cost at least nothing: a ratio under 1 is the noise of one run each way.
    eval_slot_seconds = eval_seconds * max(1.0, ray_ratio)
    slot_seconds = args.large * (args.attempt_seconds + eval_slot_seconds)
    nodes = math.ceil(slot_seconds / (args.target_hours * 3600 * args.node_slots))
    wall_hours = slot_seconds / (nodes * args.node_slots) / 3600
    # The driver keeps up while the cluster finishes records no faster than it commits them: it saturates
    # at (records it commits per second) x (slot-seconds of one record) slots. Through Ray it also spends
    # CPU on each job (dispatch, the cache snapshot, ray.wait, replaying the job's cache writes), which
    # the stand-ins leave out: the real Ray run measures that on top of the judging and commits.
    eval_rate = evaluating_rate
    if real:
        cpu_per_eval = real["ray"]["driver_cpu"] / real["ray"]["evaluations"]
        eval_rate = min(evaluating_rate, 1 / cpu_per_eval)
    sample_slots, eval_slots = sampling_rate * args.attempt_seconds, eval_rate * eval_slot_seconds
    print(f"projection assumptions: {args.large} attempts, each {args.attempt_seconds:.0f} slot-s to sample "
          f"(--attempt-seconds) and {eval_seconds:.1f} slot-s to evaluate "
          + ("(--eval-seconds)" if args.eval_seconds else "(the real part's median: the bundled suite's tests are "
             "quicker than Lite's)" if real else "(assumed)")
          + f", x{max(1.0, ray_ratio):.2f} through Ray; {args.node_slots} slots per node (--node-slots); target "
          f"{args.target_hours:.0f} h (--target-hours); the driver's records/s from the stand-ins")
    sampling_share = args.attempt_seconds / (args.attempt_seconds + eval_slot_seconds)
    print(f"projection: {slot_seconds / 3600:,.0f} slot-hours -> {nodes} nodes of {args.node_slots} slots for "
          f"{args.target_hours:.0f} h ({wall_hours:.1f} h at {nodes} nodes: {wall_hours * sampling_share:.1f} h "
          f"sampling, {wall_hours * (1 - sampling_share):.1f} h evaluating)")
    if real:
        print(f"projection: through Ray the driver spent {cpu_per_eval * 1000:.1f} ms of its own CPU per evaluation "
              f"(judging and commits included): at most {1 / cpu_per_eval:,.0f} evaluations/s, against "
              f"{evaluating_rate:,.0f} records/s with the stand-ins")
    print(f"projection: the driver saturates at {sample_slots:,.0f} slots ({sample_slots / args.node_slots:,.0f} nodes) "
          f"while sampling ({sampling_rate:,.0f} records/s x {args.attempt_seconds:.0f} s) and at {eval_slots:,.0f} slots "
          f"({eval_slots / args.node_slots:,.0f} nodes) while evaluating ({eval_rate:,.0f} records/s x "
          f"{eval_slot_seconds:.1f} s); the Lite run in {args.target_hours:.0f} h needs {nodes} nodes")

    scale = args.large / args.small
    print(f"ratio sampling records/s {args.large} vs {args.small}: "
          f"{sampling_rate / (small['sample']['records'] / small['sample']['seconds']):.2f} (goal ~1)")
    print(f"ratio evaluating records/s {args.large} vs {args.small}: "
          f"{evaluating_rate / (small['evaluate']['records'] / small['evaluate']['seconds']):.2f} (goal ~1)")
    print(f"ratio driver peak memory {args.large} vs {args.small}: {large['driver_peak_mib'] / small['driver_peak_mib']:.2f} "
          f"({large['driver_peak_mib']:.0f} vs {small['driver_peak_mib']:.0f} MiB; sampling "
          f"{large['sample']['peak_mib'] / small['sample']['peak_mib']:.2f}, evaluating "
          f"{large['evaluate']['peak_mib'] / small['evaluate']['peak_mib']:.2f}; goal <= 3)")
    sizes_small, sizes_large = run_dir_bytes(small), run_dir_bytes(large)
    print(f"ratio run folder size {args.large} vs {args.small}: "
          + ", ".join(f"{name} {sizes_large[name] / sizes_small[name]:.1f}" for name in sizes_large)
          + f" for {scale:.0f}x the records")
    print(f"ratio monkeys report seconds {args.large} vs {args.small}: "
          f"{large['report']['seconds'] / small['report']['seconds']:.1f} for {scale:.0f}x the records "
          f"(peak memory {large['report']['peak_mib'] / small['report']['peak_mib']:.1f}x)")
    if real:
        print(f"ratio Ray vs local wall per evaluation ({real['local']['evaluations']} real evaluations): "
              f"{ray_ratio:.3f} (goal < 1.10)")


if __name__ == "__main__":
    main()
