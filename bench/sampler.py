"""What the sampler itself costs, each figure a ratio against a baseline from the same run.

    .venv/bin/python bench/sampler.py [--attempts 24,48,64] [--workers 1,8,32] [--seconds 40] [--no-model]

Needs the bundled images (`monkeys images build`) and, without --no-model, the bundled CPU model
(`pip install 'monkeys[cpu]'`). Run stores go to a temporary directory. Prints:

1. against a stub model server that answers at once (``bench/stub_server.py``, in its own process):
   the real ``Sampler`` with the ``bash`` scaffold (the stub answers ``ls``, then ``submit``), each
   attempt in a fresh container of a bundled task, at 1, 8 and 32 workers: attempts per minute, and
   CPU seconds per attempt of this process (``getrusage`` self + children), of the stub, of the
   Docker daemons (dockerd + containerd, from /proc) and of the whole host (/proc/stat);
2. with the real bundled model (Gemma 3 270M under llama.cpp on this CPU, started by
   ``ManagedServer``): output tokens/s under direct load (the ``edit`` scaffold's completion
   prompts, collected by a dry pass through the sampler against the stub, sent straight with the
   openai client from 2 threads for ``--seconds``) against tokens/s through the sampler on the very
   same requests (``edit`` scaffold, completions endpoint, 2 workers, one attempt per task the
   direct load got through, same seeds; tokens from the attempts' usage over the sampling wall
   time). Goal: at least 0.9.

The last line is the headline ratio: sampler/direct tokens/s (with --no-model: attempts per minute
at the most workers over 1 worker).
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from agent.attempt import AttemptLimits
from agent.model import Endpoint, Model, ModelConfig
from agent.prompts import Templates
from agent.sampler import SampleConfig, Sampler, attempt_seed
from agent.scaffolds import BashScaffold, EditScaffold
from agent.servers import BUNDLED_MODEL, ManagedServer, ServerKind, ServerSpec, bundled_gguf
from harness import engine
from harness.containers import ContainerRuntime
from harness.image_names import image_name
from harness.scores.prices import CPU_HOST_DOLLARS_PER_HOUR, HourlyPrice, TokenPrice, price_dict
from harness.store import RunStore
from harness.tasks import load_tasks

STUB = Path(__file__).resolve().with_name("stub_server.py")
_TICK = os.sysconf("SC_CLK_TCK")


# -- CPU accounting ---------------------------------------------------------------------------


def own_cpu() -> float:
    """CPU seconds of this process and its reaped children."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        r = resource.getrusage(who)
        total += r.ru_utime + r.ru_stime
    return total


def pid_cpu(pid: int) -> float:
    """utime + stime of a live process, seconds (0 when it cannot be read)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def pids_named(*names: str) -> list[int]:
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if (d / "comm").read_text().strip() in names:
                    found.append(int(d.name))
            except OSError:
                pass
    return found


def host_cpu() -> float:
    """Busy CPU seconds of the whole host since boot (every state but idle and iowait)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, Path("/proc/stat").read_text().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / _TICK


@dataclass
class Cpu:
    own: float
    stub: float
    daemons: float
    host: float


class CpuMeter:
    def __init__(self, stub_pid: int | None):
        self.stub_pid = stub_pid
        # The daemons serving the Docker API and running containers; absent when Docker is remote.
        self.daemons = pids_named("dockerd", "containerd")

    def read(self) -> Cpu:
        return Cpu(own_cpu(), pid_cpu(self.stub_pid) if self.stub_pid else 0.0,
                   sum(pid_cpu(p) for p in self.daemons), host_cpu())

    @staticmethod
    def delta(a: Cpu, b: Cpu) -> Cpu:
        return Cpu(b.own - a.own, b.stub - a.stub, b.daemons - a.daemons, b.host - a.host)


# -- building a sampler as `monkeys sample` does ------------------------------------------------


def make_sampler(*, run: str, root: Path, client, tasks, images, k: int, workers: int, model: Model,
                 model_id: dict, scaffold, endpoint: Endpoint, price, base_url_name: str) -> Sampler:
    """Mirrors monkeys/commands/sample.py cmd_sample, with the store under ``root``."""
    templates = Templates.load(scaffold.name)
    sampling = model.config.sampling()
    sampling["base_url"] = base_url_name
    limits = AttemptLimits()
    config = SampleConfig(
        run=run, k=k, scaffold=scaffold.name,
        model={**sampling, "endpoint": endpoint.value, "tools": False, **model_id},
        limits=limits, templates_digest=templates.digest(), seed=0, workers=workers, price=price_dict(price))
    full_config = {**asdict(config), "tasks": "bundled", "prompts": str(templates.folder)}
    runtime = ContainerRuntime(client, run)
    runtime.reap()
    sampler = Sampler(config, tasks, images, runtime=runtime, model=model, scaffold=scaffold, templates=templates,
                      price=price, store=RunStore(run, root=root), full_config=full_config)
    sampler.open_run()
    return sampler


def finish(sampler: Sampler) -> None:
    sampler.close()
    sampler.store.close()


def jobs_for(tasks, attempts: int):
    """(tasks, k) whose product is ``attempts`` or just above, spreading over as many tasks as fit."""
    k = max(1, math.ceil(attempts / len(tasks)))
    return tasks[:math.ceil(attempts / k)], k


# -- 1. the stub ---------------------------------------------------------------------------------


def start_stub() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, str(STUB), "--port", "0"], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    if not line.startswith("listening "):
        proc.kill()
        sys.exit(f"the stub server did not start: {line!r}")
    return proc, line.split()[1]


def stub_part(args, client, tasks, images, root: Path) -> list[tuple[int, float]]:
    proc, base_url = start_stub()
    rates = []
    try:
        model = Model(ModelConfig(name="stub", base_url=base_url, retries=2))
        price = TokenPrice(0.0, 0.0, source="bench stub (free)")
        meter = CpuMeter(proc.pid)
        print(f"1. sampler against an instant stub model (bash scaffold: ls, then submit; {len(tasks)} bundled tasks)")
        print(f"{'workers':>7}{'attempts':>9}{'errors':>7}{'wall s':>8}{'att/min':>9}"
              f"{'CPU s per attempt:':>20}{'monkeys':>9}{'stub':>7}{'daemons':>9}{'host':>7}")
        for workers, attempts in zip(args.workers, args.attempts):
            some, k = jobs_for(tasks, attempts)
            sampler = make_sampler(run=f"stub-w{workers}", root=root, client=client, tasks=some, images=images, k=k,
                                   workers=workers, model=model, model_id={}, scaffold=BashScaffold(),
                                   endpoint=Endpoint.CHAT, price=price, base_url_name="bench stub")
            before, started = meter.read(), time.monotonic()
            result = sampler.run()
            wall = time.monotonic() - started
            cpu = CpuMeter.delta(before, meter.read())
            finish(sampler)
            made = result.done + result.infra_errors
            rate = result.done / wall * 60
            rates.append((workers, rate))
            print(f"{workers:>7}{made:>9}{result.infra_errors:>7}{wall:>8.1f}{rate:>9.1f}{'':>20}"
                  f"{cpu.own / made:>9.3f}{cpu.stub / made:>7.3f}{cpu.daemons / made:>9.3f}{cpu.host / made:>7.3f}")
            if result.infra_errors:
                errors = [a.details.get("error") for a in RunStore(f"stub-w{workers}", root=root).attempts()
                          if a.status != "done"]
                print(f"        e.g. {errors[0] if errors else '?'}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return rates


# -- 2. the real model ---------------------------------------------------------------------------


class RecordingModel(Model):
    """Notes every completion request (a dry pass against the stub collects the edit prompts)."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.requests: list[dict] = []
        self._lock = threading.Lock()

    def complete(self, prompt: str, *, seed=None, stop=None, max_tokens=None):
        with self._lock:
            self.requests.append({"prompt": prompt, "seed": seed, "stop": stop, "max_tokens": max_tokens})
        return super().complete(prompt, seed=seed, stop=stop, max_tokens=max_tokens)


def edit_requests(client, tasks, images, root: Path) -> dict[str, dict]:
    """{instance_id: its completion request}, from one attempt per task through the sampler against
    the stub: the prompts the real run will send, and which tasks send one at all."""
    proc, base_url = start_stub()
    try:
        model = RecordingModel(ModelConfig(name="stub", base_url=base_url, retries=2))
        sampler = make_sampler(run="edit-dry", root=root, client=client, tasks=tasks, images=images, k=1, workers=2,
                               model=model, model_id={}, scaffold=EditScaffold(endpoint=Endpoint.COMPLETIONS),
                               endpoint=Endpoint.COMPLETIONS, price=TokenPrice(0.0, 0.0, source="bench stub"),
                               base_url_name="bench stub")
        sampler.run()
        finish(sampler)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    by_seed = {attempt_seed(0, t.instance_id, 0): t.instance_id for t in tasks}
    return {by_seed[r["seed"]]: r for r in model.requests if r["seed"] in by_seed}


def direct_load(model_config: ModelConfig, tasks, requests: dict[str, dict], seconds: float, threads: int):
    """Each task's attempt-0 request sent straight, in the sampler's order, ``threads`` at a time,
    none started past ``seconds``. Returns ({instance_id: output tokens}, wall seconds)."""
    client = Model(model_config).client
    queue = iter(tasks)
    lock = threading.Lock()
    tokens: dict[str, int] = {}
    started = time.monotonic()

    def worker():
        while time.monotonic() - started < seconds:
            with lock:
                task = next(queue, None)
            if task is None:
                return
            r = requests[task.instance_id]
            response = client.completions.create(
                model=model_config.name, prompt=r["prompt"], temperature=model_config.temperature,
                top_p=model_config.top_p, max_tokens=r["max_tokens"] or model_config.max_tokens,
                seed=r["seed"], stop=r["stop"] or None)
            with lock:
                tokens[task.instance_id] = response.usage.completion_tokens if response.usage else 0

    pool = [threading.Thread(target=worker, name=f"direct-{n}") for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return tokens, time.monotonic() - started


def model_part(args, client, tasks, images, root: Path) -> float:
    requests = edit_requests(client, tasks, images, root)
    chosen = [t for t in tasks if t.instance_id in requests]
    if not chosen:
        sys.exit("no bundled task gave the edit scaffold a function to show the model")
    gguf = bundled_gguf()
    spec = ServerSpec(ServerKind.LLAMA_CPP, str(gguf.path), BUNDLED_MODEL, context=8192, parallel=8)
    with ManagedServer(spec) as server:
        config = ModelConfig(name=BUNDLED_MODEL, base_url=server.base_url)
        print(f"2. real model: {BUNDLED_MODEL} under llama.cpp on {os.cpu_count()} CPUs (started in "
              f"{server.started_seconds:.1f} s); edit scaffold, completions endpoint; {len(chosen)} tasks "
              f"with a function to show")
        # Warm-up, untimed: the first call pays for loading the weights into memory.
        Model(config).complete(requests[chosen[0].instance_id]["prompt"], max_tokens=16)
        meter = CpuMeter(None)

        # Baseline: the prompts straight to the server for --seconds (each task's attempt 0, in order).
        before = meter.read()
        direct_tokens, direct_wall = direct_load(config, chosen, requests, args.seconds, 2)
        direct_cpu = CpuMeter.delta(before, meter.read())
        direct = sum(direct_tokens.values()) / direct_wall

        # The same requests through the sampler: the tasks the baseline got through, attempt 0 each.
        same = [t for t in chosen if t.instance_id in direct_tokens]
        model_id = {"server": ServerKind.LLAMA_CPP.value, "gguf": gguf.path.name, "gguf_sha256": gguf.sha256}
        sampler = make_sampler(run="edit-model", root=root, client=client, tasks=same, images=images, k=1, workers=2,
                               model=Model(config), model_id=model_id,
                               scaffold=EditScaffold(endpoint=Endpoint.COMPLETIONS), endpoint=Endpoint.COMPLETIONS,
                               price=HourlyPrice(CPU_HOST_DOLLARS_PER_HOUR, "bench"),
                               base_url_name=f"managed {ServerKind.LLAMA_CPP.value}")
        before, started = meter.read(), time.monotonic()
        result = sampler.run()
        wall = time.monotonic() - started
        sampler_cpu = CpuMeter.delta(before, meter.read())
        records = sampler.store.attempts()
        sampled = {a.instance_id: a.details["usage"]["output_tokens"] for a in records}
        model_s = sum(a.details["model_seconds"] for a in records)
        container_s = sum(a.details["container_seconds"] for a in records)
        attempt_s = sum(a.details["wall_seconds"] for a in records)
        finish(sampler)
        through = result.usage.output_tokens / wall
        matching = sum(sampled.get(i) == n for i, n in direct_tokens.items())
        print(f"{'':>3}{'load':<20}{'calls':>6}{'out tokens':>11}{'wall s':>8}{'tokens/s':>9}"
              f"{'monkeys CPU s':>15}{'daemons CPU s':>15}")
        print(f"{'':>3}{'direct, 2 threads':<20}{len(direct_tokens):>6}{sum(direct_tokens.values()):>11}"
              f"{direct_wall:>8.1f}{direct:>9.1f}{direct_cpu.own:>15.2f}{direct_cpu.daemons:>15.2f}")
        print(f"{'':>3}{'sampler, 2 workers':<20}{result.done:>6}{result.usage.output_tokens:>11}"
              f"{wall:>8.1f}{through:>9.1f}{sampler_cpu.own:>15.2f}{sampler_cpu.daemons:>15.2f}")
        print(f"   same requests both ways; {matching} of {len(direct_tokens)} gave the same number of output tokens; "
              f"{result.infra_errors} infra errors")
        print(f"   sampler attempts: {attempt_s:.1f} s in all, of which waiting on the model {model_s:.1f} s and in "
              f"shell commands {container_s:.1f} s (the rest: container start and removal, patch collection)")
    ratio = through / direct
    print(f"ratio sampler/direct tokens/s: {ratio:.2f} (sampler {through:.1f}, direct {direct:.1f} tokens/s over the "
          f"same {len(same)} requests; goal >= 0.9: {'met' if ratio >= 0.9 else 'NOT met'})")
    return ratio


def int_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int_list, default=[1, 8, 32], help="worker counts (default 1,8,32)")
    parser.add_argument("--attempts", type=int_list, default=[24, 48, 64],
                        help="attempts at each worker count (default 24,48,64)")
    parser.add_argument("--seconds", type=float, default=40.0, help="real model: seconds of direct load; the sampler then makes the same calls (default 40)")
    parser.add_argument("--no-model", action="store_true", help="skip the real-model part")
    args = parser.parse_args()
    if len(args.workers) != len(args.attempts):
        parser.error("--workers and --attempts need as many values each")

    all_tasks = load_tasks().tasks
    client = engine.connect()
    images = {}
    for task in all_tasks:
        try:
            client.images.get(image_name(task))
            images[task.instance_id] = image_name(task)
        except Exception:
            pass
    tasks = [t for t in all_tasks if t.instance_id in images]
    if not tasks:
        sys.exit("no bundled task image is here: run `monkeys images build` first")

    with tempfile.TemporaryDirectory(prefix="monkeys-bench-") as tmp:
        root = Path(tmp)
        rates = stub_part(args, client, tasks, images, root)
        (low_w, low), (high_w, high) = min(rates), max(rates)
        scaling = f"attempts/min {high_w} vs {low_w} workers: {high / low:.2f}x ({high:.0f} vs {low:.0f} per min)"
        if args.no_model:
            print(f"ratio {scaling}")
            return
        print(f"   ({scaling})")
        model_part(args, client, tasks, images, root)


if __name__ == "__main__":
    main()
