"""``monkeys sample``, ``monkeys runs show`` and ``monkeys export``: wiring the agent (model, server,
scaffold, sampler) to the harness's ground (tasks, images, containers, run store, prices)."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from agent.attempt import AttemptLimits
from agent.context import ContextWindow, context_window, fit_budget
from agent.model import Endpoint, Model, ModelConfig, ModelConfigError
from agent.parameters import ParameterCount, count_parameters
from agent.prompts import Templates, TemplateError
from agent.sampler import PARAMETERS_KEY, SPEND_DETAILS, FingerprintMismatch, RunBusy, SampleConfig, Sampler, spent
from agent.scaffolds import SCAFFOLDS
from agent.servers import BUNDLED_MODEL, ManagedServer, ServerError, ServerKind, ServerSpec, bundled_gguf, file_sha256
from agent.trajectories import export_mini_swe_agent
from harness import engine
from harness.config import runs_dir
from harness.containers import ContainerRuntime, Limits
from harness.image_names import builds_here, image_name
from harness.scores.prices import (CPU_HOST_DOLLARS_PER_HOUR, GPU_HOST_DOLLARS_PER_HOUR, HourlyPrice, PriceFileError,
                                   UnknownPrice, lookup, price_dict, read_price_file)
from harness.store import STORE_FILE, AttemptStatus, RunStore
from harness.suite import materialize
from images.build import ImageBuilder
from monkeys import options
from monkeys.display import err, out, print_json, progress_bars
from monkeys.options import SharedOptions


class UsageError(ValueError):
    """Options that do not fit together; the message says which."""


def _server_kind(args) -> ServerKind | None:
    if args.base_url:
        return None
    if args.server != "auto":
        return None if args.server == "none" else ServerKind(args.server)
    if args.model == BUNDLED_MODEL or args.model.endswith(".gguf"):
        return ServerKind.LLAMA_CPP
    return None


def _run_name(args) -> str:
    if args.run:
        return args.run
    stem = Path(args.model).stem if args.model.endswith(".gguf") else args.model
    return re.sub(r"[^A-Za-z0-9._-]+", "-", f"{stem}-{args.scaffold}").strip("-")


def _resolve_defaults(args) -> None:
    base_model = args.model == BUNDLED_MODEL
    if args.scaffold == "auto":
        # A base model cannot follow a multi-turn shell protocol; it completes code.
        args.scaffold = "edit" if base_model else "bash"
    if args.endpoint == "auto":
        args.endpoint = Endpoint.COMPLETIONS.value if base_model else Endpoint.CHAT.value
    if args.scaffold == "bash" and args.endpoint == Endpoint.COMPLETIONS.value:
        raise UsageError("--scaffold bash needs --endpoint chat (a multi-turn conversation)")


def cmd_sample(args) -> int:
    try:
        _resolve_defaults(args)
    except UsageError as problem:
        err.print(f"[red]error:[/] {escape(str(problem))}")
        return 2
    tasks = options.load(args).tasks
    kind = _server_kind(args)

    # Everything that can refuse the run refuses before any container or server starts.
    try:
        templates = Templates.load(args.scaffold, args.prompts)
        price = _price(args, kind)
    except (TemplateError, UnknownPrice, PriceFileError) as problem:
        err.print(f"[red]error:[/] {escape(str(problem))}")
        return 2
    model_path, model_id = None, {}
    if kind is ServerKind.LLAMA_CPP:
        try:
            gguf = bundled_gguf() if args.model == BUNDLED_MODEL else None
        except ServerError as problem:
            err.print(f"[red]error:[/] {escape(str(problem))}")
            return 2
        model_path = gguf.path if gguf else Path(args.model)
        if not model_path.is_file():
            err.print(f"[red]error:[/] no GGUF file at {model_path}")
            return 2
        model_id = {"server": kind.value, "gguf": model_path.name,
                    "gguf_sha256": gguf.sha256 if gguf else file_sha256(model_path)}
    elif kind is ServerKind.VLLM:
        model_id = {"server": kind.value}
    parameters = _parameters(args, kind, model_path)
    alias = BUNDLED_MODEL if args.model == BUNDLED_MODEL else (model_path.stem if model_path else args.model)
    model_config = ModelConfig(
        name=alias, base_url=args.base_url, api_key_env=args.api_key_env, temperature=args.temperature,
        top_p=args.top_p, max_tokens=args.max_tokens, retries=args.retries, backoff_initial=args.backoff)
    sampling = model_config.sampling()
    spec = (ServerSpec(kind, str(model_path) if model_path else args.model, alias, context=args.context,
                       parallel=max(args.workers, 8)) if kind is not None else None)
    try:
        window = _context_window(args, spec, alias)
    except ValueError as problem:
        err.print(f"[red]error:[/] {escape(str(problem))}")
        return 2
    if window.tokens and args.scaffold == "bash" and fit_budget(window.tokens, args.max_tokens) < window.tokens // 4:
        # Every attempt would end at its first call or soon after: say so once, before any container.
        err.print(f"[red]error:[/] --max-tokens {args.max_tokens} leaves {max(fit_budget(window.tokens, args.max_tokens), 0)} "
                  f"of the model's {window.tokens}-token context window ({window.source}) for the conversation; "
                  f"lower --max-tokens (to {window.tokens // 4}, say) or give a larger --context")
        return 2
    limits = AttemptLimits(steps=args.steps, tokens=args.attempt_tokens, dollars=args.attempt_dollars,
                           wall_seconds=args.attempt_seconds, command_timeout=args.command_timeout,
                           context_window=window.tokens)
    run = _run_name(args)
    config = SampleConfig(
        run=run, k=args.k, scaffold=args.scaffold,
        model={**sampling, "endpoint": args.endpoint, "tools": args.tools, **model_id},
        limits=limits, templates_digest=templates.digest(), seed=args.seed, workers=args.workers,
        budget_dollars=args.budget_dollars, budget_tokens=args.budget_tokens, price=price_dict(price),
        model_parameters=parameters.as_meta())
    full_config = {**asdict(config), "tasks": args.tasks or "bundled", "prompts": str(templates.folder),
                   "base_url": args.base_url or (f"managed {kind.value}" if kind else "api.openai.com"),
                   "context_window": window.as_meta()}
    store = RunStore(run)

    runtime = attempts = server = None
    scaffold_cls = SCAFFOLDS[args.scaffold]
    scaffold = scaffold_cls(tools=args.tools) if args.scaffold == "bash" else scaffold_cls(endpoint=Endpoint(args.endpoint))
    try:
        if args.cluster:
            # Containers, images and any managed server live on the nodes; the run store stays here.
            attempts = _cluster_attempts(args, run, tasks, spec, model_id)
            images = _cluster_images(args, tasks, attempts)
        else:
            client = engine.connect()
            runtime = ContainerRuntime(client, run)
            runtime.reap()
            # Tasks without an image stay in the run (recorded as asked for, and why none was made), so
            # a report's coverage over every task asked for counts them.
            images = _images(client, tasks, args.workers)
        sampler = Sampler(config, tasks, images, runtime=runtime, model=None, scaffold=scaffold,
                          templates=templates, price=price, store=store, full_config=full_config, attempts=attempts)
        try:
            sampler.open_run()
        except (FingerprintMismatch, RunBusy) as problem:
            err.print(f"[red]error:[/] {escape(str(problem))}")
            return 2
        if spec is not None and attempts is None:
            err.print(f"starting {kind.value} for {alias} ...")
            server = ManagedServer(spec)
            server.start()
            err.print(f"{kind.value} answered on {server.base_url} after {server.started_seconds:.1f} s")
            model_config = replace(model_config, base_url=server.base_url)
        if kind is ServerKind.VLLM and parameters.parameters is None:
            # vLLM downloads a hub model as it starts: only now are its files there to count.
            store.set_meta(PARAMETERS_KEY, count_parameters(args.model).as_meta())
        sampler.model = Model(model_config)
        result = _sample_with_progress(sampler, run)
    except ServerError as problem:
        err.print(f"[red]error:[/] {escape(str(problem))}")
        return 3
    except (ModelConfigError, FingerprintMismatch) as problem:
        # A refused preflight (a bad key, an unknown model, a refused parameter): no attempt was made.
        err.print(f"[red]error:[/] {escape(str(problem))}")
        return 2
    finally:
        if server is not None:
            server.stop()
        if attempts is not None:
            attempts.close()
        store.close()
    finished = RunStore(run)
    done = finished.count_attempts(AttemptStatus.DONE)
    finished.close()
    line = (f"run {run}: {result.done} attempts made now ({result.skipped_existing} kept from before), "
            f"{result.infra_errors} infrastructure errors (redone on the next call), "
            f"{done} finished in all; {result.usage.total} tokens, ${result.dollars:.4f} now; the whole run "
            f"(failed tries included) {result.run_usage.total} tokens, ${result.run_dollars:.4f}")
    if result.attempts_without_usage:
        line += (f"; {result.attempts_without_usage} tries had a model response without token usage: their tokens "
                 f"(and per-token dollars, and so the budgets) are undercounted, and the report shows them as unknown")
    if result.stopped_by_budget:
        line += f"; stopped: {result.stopped_by_budget}"
    if result.interrupted:
        line += "; interrupted (rerun the same command to continue)"
    out.print(line, soft_wrap=True)  # one line, whatever the width: scripts and tests read it
    if request := sampler.config.model.get("request"):
        out.print(f"requests sent {json.dumps(request['sent'])}, without {', '.join(request['dropped']) or 'nothing'} "
                  f"({request['why']})", soft_wrap=True)
    out.print(f"store: {runs_dir() / run / STORE_FILE}")
    return 130 if result.interrupted else (1 if result.infra_errors else 0)


def _context_window(args, spec: ServerSpec | None, alias: str) -> ContextWindow:
    """The model's context window for fitting conversations: ``--context-window``, else what a managed
    server is started with, else what an endpoint reports, else genai-prices, else unknown. Known
    before any server starts: the window is part of the run's fingerprint (its limits)."""
    if spec is not None:
        managed = spec.window()
        if args.context_window is None and managed is None:
            return ContextWindow(None, f"unknown: {args.model}'s config.json is not on disk yet "
                                       f"(--context or --context-window states it)")
        return context_window(explicit=args.context_window, managed=managed)
    # OpenAI's own API reports no window: only a --base-url endpoint is asked.
    return context_window(explicit=args.context_window, base_url=args.base_url, model=alias,
                          api_key=os.environ.get(args.api_key_env), provider=args.provider)


def _parameters(args, kind: ServerKind | None, model_path: Path | None) -> ParameterCount:
    """The model's parameter count for FLOPs: stated by the user, or read from what a managed server
    serves (the GGUF's header, the model folder's safetensors); otherwise unknown, saying why."""
    if args.model_parameters is not None:
        return ParameterCount(args.model_parameters, "--model-parameters")
    if kind is ServerKind.LLAMA_CPP and model_path is not None:
        return count_parameters(str(model_path))
    if kind is ServerKind.VLLM:
        return count_parameters(args.model)
    return ParameterCount(None, reason=f"{args.model} is served by an endpoint monkeys cannot inspect "
                                       f"(--model-parameters states its count)")


def _price(args, kind: ServerKind | None):
    if args.price_per_hour is not None:
        return HourlyPrice(args.price_per_hour, "--price-per-hour")
    if kind is ServerKind.LLAMA_CPP:
        return HourlyPrice(CPU_HOST_DOLLARS_PER_HOUR, "default CPU host (--price-per-hour to change)")
    if kind is ServerKind.VLLM:
        return HourlyPrice(GPU_HOST_DOLLARS_PER_HOUR, "default GPU host (--price-per-hour to change)")
    prices = read_price_file(args.prices) if args.prices else None
    return lookup(args.model, provider=args.provider, price_file=prices)


def _images(client, tasks, workers: int) -> dict[str, str]:
    """Each task's image, built or reused; a task without one is named and left out."""
    builder = ImageBuilder(client, materialize, registry=None, workers=workers)
    report = builder.build([t for t in tasks if t.env_recipe is not None])
    for failure in report.failed:
        err.print(f"[yellow]no image[/] {escape(failure.error)}")
    images = {}
    for task in tasks:
        name = image_name(task)
        if builder.exists(name):
            images[task.instance_id] = name
        else:
            err.print(f"[yellow]skipped[/] {task.instance_id}: its image {name} is not here "
                      f"(monkeys images build, or pull it)")
    return images


def _cluster_attempts(args, run: str, tasks, spec: ServerSpec | None, model_id: dict):
    """The attempts as Ray tasks on ``--cluster``, with a managed server on each node where one is asked for."""
    try:
        from agent.cluster import RayAttempts  # Ray is an optional extra: imported only when asked for
    except ImportError as missing:
        raise SystemExit(f"error: --cluster needs Ray ({missing}); install it with pip install 'monkeys[ray]'") from None
    serve = None
    if spec is not None:
        serve = (spec, model_id.get("gguf_sha256"), args.model == BUNDLED_MODEL)
        err.print(f"starting {spec.kind.value} for {spec.alias} on every Ray node ...")
    attempts = RayAttempts(args.cluster, run, Limits(), {t.instance_id: image_name(t) for t in tasks},
                           source=options.node_images(args), serve=serve)
    where = f", a {spec.kind.value} server on each of {len(attempts.servers.urls)} nodes" if attempts.servers else ""
    err.print(f"Ray cluster at {args.cluster}: {attempts.slots} attempts at once{where}")
    return attempts


def _cluster_images(args, tasks, attempts) -> dict[str, str]:
    """Each task's image, for the tasks some node can have it for: a node holds it already, or can
    build it from the task's recipe, or can pull it from ``--registry``."""
    images = {}
    for task in tasks:
        name = image_name(task)
        if builds_here(task) or args.registry or attempts.placement.holders.get(name):
            images[task.instance_id] = name
        else:
            err.print(f"[yellow]skipped[/] {task.instance_id}: no Ray node holds its image {name}, and it has no "
                      f"recipe to build it from (push it to a registry and pass --registry)")
    return images


def _sample_with_progress(sampler: Sampler, run: str):
    p = sampler.progress
    with progress_bars(with_stats=True) as progress:
        bar = progress.add_task(f"sampling {run}", total=None, stats="")

        def stats() -> str:
            eta = p.eta_seconds()
            return (f"running {p.running}, queued {p.queued}, infra errors {p.infra_errors} | "
                    f"{p.tokens_per_second():.1f} tok/s | ${p.dollars:.4f} | "
                    f"ETA {time.strftime('%H:%M:%S', time.gmtime(eta)) if eta is not None else '?'}")

        def on_event(kind: str, payload) -> None:
            progress.update(bar, total=p.total, completed=p.done + p.infra_errors, stats=stats())

        return sampler.run(on_event)


# ---------------------------------------------------------------------------------------------
# runs show, export


def _open_run(name: str) -> RunStore:
    if not (runs_dir() / name / STORE_FILE).is_file():
        raise SystemExit(f"error: no run store at {runs_dir() / name / STORE_FILE}")
    return RunStore(name)


def attempt_rows(store: RunStore) -> list[dict]:
    """One row per attempt, with its verdict when the run has been evaluated."""
    verdicts = {(e.instance_id, e.index): e for e in store.evaluations()}
    rows = []
    for a in store.attempts():
        d = a.details
        usage = d.get("usage", {})
        e = verdicts.get((a.instance_id, a.index))
        rows.append({
            "instance_id": a.instance_id, "index": a.index, "status": a.status,
            "exit_reason": d.get("exit_reason"), "seed": d.get("seed"), "temperature": d.get("temperature"),
            "tokens": {"input": usage.get("input_tokens", 0), "cached_input": usage.get("cached_input_tokens", 0),
                       "output": usage.get("output_tokens", 0)},
            "cost": d.get("dollars", 0.0), "steps": d.get("steps", 0),
            "wall_seconds": d.get("wall_seconds"), "model_seconds": d.get("model_seconds"),
            "container_seconds": d.get("container_seconds"),
            "patch_lines": len((a.patch or "").splitlines()), "error": d.get("error", ""),
            "resolved": e.resolved if e else None, "resolved_guarded": e.resolved_guarded if e else None,
            "trajectory": d.get("trajectory"),
        })
    return rows


def cmd_runs_show(args) -> int:
    store = _open_run(args.name)
    rows = attempt_rows(store)
    summary = {"run": args.name, "fingerprint": store.meta("fingerprint"), "k": store.meta("k"),
               "attempts": len(rows), "done": sum(r["status"] == AttemptStatus.DONE.value for r in rows),
               "infra_errors": sum(r["status"] == AttemptStatus.INFRA_ERROR.value for r in rows),
               "cost": round(sum(r["cost"] or 0 for r in rows), 6),
               "tokens": sum(sum(r["tokens"].values()) - r["tokens"]["cached_input"] for r in rows)}
    # Tries redone after an infrastructure error or abandoned by an interrupt are no rows here, but
    # they were paid for.
    tries = store.every_try(SPEND_DETAILS)
    usage, dollars, _ = spent(tries)
    summary.update(replaced_tries=len(tries) - len(rows), spent_all_tries={"dollars": round(dollars, 6), "tokens": usage.total})
    store.close()
    if args.json:
        print_json({**summary, "attempt_rows": rows})
        return 0
    table = Table("instance_id", "#", "status", "exit", "tokens in/out", "cost", "seconds", "patch", "resolved",
                  title=f"run {args.name}: {summary['done']} finished, {summary['infra_errors']} infrastructure "
                        f"errors, ${summary['cost']:.4f} (with its {summary['replaced_tries']} redone or abandoned "
                        f"tries: ${summary['spent_all_tries']['dollars']:.4f})")
    for r in rows[:1000]:
        verdict = "" if r["resolved"] is None else ("yes" if r["resolved_guarded"] else "no")
        table.add_row(r["instance_id"], str(r["index"]), r["status"], r["exit_reason"] or "",
                      f"{r['tokens']['input']}/{r['tokens']['output']}", f"{r['cost']:.5f}",
                      f"{r['wall_seconds'] or 0:.1f}", f"{r['patch_lines']} lines", verdict)
    out.print(table)
    return 0


def cmd_export(args) -> int:
    store = _open_run(args.name)
    attempts = store.attempts(AttemptStatus.DONE)
    store.close()
    target: Path = args.out
    target.mkdir(parents=True, exist_ok=True)
    if args.format == "mini-swe-agent":
        return _export_mini_swe_agent(args.name, attempts, target)
    by_index: dict[int, list] = {}
    for a in attempts:
        by_index.setdefault(a.index, []).append(a)
    # The official harness keeps one prediction per instance per run: one file per sample index.
    for index, group in sorted(by_index.items()):
        with (target / f"preds_s{index}.jsonl").open("w") as f:
            for a in group:
                f.write(json.dumps({"instance_id": a.instance_id, "model_name_or_path": f"{a.model}__s{index}",
                                    "model_patch": a.patch or ""}) + "\n")
    source = runs_dir() / args.name / "trajectories"
    if source.is_dir():
        shutil.copytree(source, target / "trajectories", dirs_exist_ok=True)
    out.print(f"{len(attempts)} attempts in {len(by_index)} preds files (one per sample index) and their "
              f"trajectories in {target}")
    return 0


def _export_mini_swe_agent(name: str, attempts: list, target: Path) -> int:
    exported = export_mini_swe_agent(runs_dir() / name, attempts, target)
    for path in exported.missing:
        err.print(f"error: no trajectory file at {path} for a finished attempt; rerun `monkeys sample` "
                  f"for run {name} to redo it, or export without it")
    out.print(f"{len(exported.written)} trajectories in mini-swe-agent's format in {target} (one folder per "
              f"sample index; `mini-extra inspector {target}` opens them all, `{target}/0` the first attempts)")
    return 1 if exported.missing else 0


def add_parsers(commands, shared: SharedOptions) -> None:
    """``sample``, ``runs show`` and ``export``."""
    p = commands.add_parser(
        "sample", parents=[shared.workers, shared.task_set, shared.cluster],
        help="k independent attempts per task, each in a fresh container; resumable by rerunning, extendable "
             "with a larger -k or more tasks")
    p.add_argument("--model", default=BUNDLED_MODEL,
                   help=f"model name at the endpoint, or a GGUF path (default: the bundled {BUNDLED_MODEL}, "
                        "served by llama.cpp that monkeys starts and stops)")
    p.add_argument("-k", type=int, default=1, help="attempts per task (default 1)")
    p.add_argument("--run", default=None, help="run name, results in runs/<run>/ (default: <model>-<scaffold>)")
    p.add_argument("--scaffold", choices=["auto", *SCAFFOLDS], default="auto",
                   help="bash (multi-turn shell agent) or edit (one call, edits applied); auto: edit for the "
                        "bundled base model, bash otherwise")
    p.add_argument("--endpoint", choices=["auto", *(e.value for e in Endpoint)], default="auto",
                   help="chat, or completions for base models (auto: completions for the bundled model)")
    p.add_argument("--tools", action="store_true", help="bash scaffold: a bash tool call instead of fenced blocks")
    p.add_argument("--base-url", default=None, help="an OpenAI-compatible endpoint (.../v1) already running")
    p.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")
    p.add_argument("--server", choices=["auto", "none", *(k.value for k in ServerKind)], default="auto",
                   help="a model server monkeys starts and stops: llama.cpp (a GGUF, on CPU) or vllm (on a GPU)")
    p.add_argument("--context", type=int, default=None,
                   help="managed server context length (default: llama.cpp the GGUF's trained context, at most "
                        "32768 and a 2 GiB KV cache on a CPU; vLLM the model's maximum)")
    p.add_argument("--context-window", type=int, default=None, metavar="TOKENS",
                   help="the model's context window, for keeping the bash scaffold's conversation inside it "
                        "(default: asked from the server, else genai-prices, else unknown: nothing trimmed)")
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--max-tokens", type=int, default=ModelConfig.max_tokens,
                   help=f"output tokens per model call, at most (default {ModelConfig.max_tokens})")
    p.add_argument("--seed", type=int, default=0, help="run seed; each attempt's seed derives from it")
    p.add_argument("--steps", type=int, default=50, help="per attempt: model calls (default 50)")
    p.add_argument("--attempt-tokens", type=int, default=400_000, help="per attempt: tokens (default 400000)")
    p.add_argument("--attempt-dollars", type=float, default=2.0, help="per attempt: dollars (default 2)")
    p.add_argument("--attempt-seconds", type=float, default=1800.0, help="per attempt: wall seconds (default 1800)")
    p.add_argument("--command-timeout", type=float, default=120.0, help="per shell command: seconds (default 120)")
    p.add_argument("--budget-dollars", type=float, default=None, help="whole run: stop starting attempts past this")
    p.add_argument("--budget-tokens", type=int, default=None, help="whole run: stop starting attempts past this")
    p.add_argument("--prices", type=Path, default=None, help="price file (TOML/JSON) for models genai-prices lacks")
    p.add_argument("--model-parameters", type=int, default=None,
                   help="the model's parameter count, for FLOPs where monkeys cannot read it (an endpoint it does "
                        "not manage); a managed server's model is counted from its files")
    p.add_argument("--provider", default=None, help="provider name for the price lookup (openai, deepseek, ...)")
    p.add_argument("--price-per-hour", type=float, default=None,
                   help=f"price a model by host time (defaults: CPU ${CPU_HOST_DOLLARS_PER_HOUR}/h, "
                        f"GPU ${GPU_HOST_DOLLARS_PER_HOUR}/h for managed servers)")
    p.add_argument("--prompts", type=Path, default=None, help="a folder of prompt templates replacing the scaffold's")
    p.add_argument("--retries", type=int, default=8, help="tries per model call for 429/5xx/timeouts (default 8)")
    p.add_argument("--backoff", type=float, default=1.0, help="seconds before the first retry (doubles; default 1)")
    p.set_defaults(func=cmd_sample, makes_containers=True)

    runs = commands.add_parser("runs", help="look at sampling runs")
    runs_commands = runs.add_subparsers(dest="runs_command", required=True)
    p = runs_commands.add_parser("show", parents=[shared.json], help="a run's attempts: status, tokens, cost, verdict")
    p.add_argument("name")
    p.set_defaults(func=cmd_runs_show)

    p = commands.add_parser("export", help="a run's patches as SWE-bench preds files, one per sample index, "
                                           "and its trajectories; or its trajectories in mini-swe-agent's format")
    p.add_argument("name")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--format", choices=["preds", "mini-swe-agent"], default="preds",
                   help="preds (default): preds_s<i>.jsonl per sample index and the trajectories as they are; "
                        "mini-swe-agent: each attempt's trajectory as OUT/<i>/<instance_id>/<instance_id>.traj.json "
                        "(one folder per sample index i, each with its preds.json, as a mini-swe-agent batch run "
                        "writes it), for `mini-extra inspector OUT/<i>`")
    p.set_defaults(func=cmd_export)


