"""Task images: one builder, images named by a hash of their recipe, no registry required.

Three layers, laid out like the official SWE-bench images:
  base      Debian with python3, venv, git. Pulled as python:<version>-slim where a registry
            answers; otherwise bootstrapped from Debian packages (debootstrap + docker import).
  env       base + a venv at /opt/miniconda3/envs/testbed holding the recipe's packages, and a
            shim so the official `source /opt/miniconda3/bin/activate && conda activate testbed` works.
  instance  env + the task's repository at base_commit in /testbed (history up to it, nothing later).

A name carries a digest of everything that determines the image (the recipe, the Dockerfile
template, the parent's name), so a changed recipe rebuilds and an unchanged one is reused.
"""

from __future__ import annotations

import enum
import io
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import docker
import docker.errors

from harness.containers import tar_bytes
from harness.image_names import (BASE_PACKAGES, BaseSpec, EnvSpec, InstanceSpec, builds_here, image_name,
                                 instance_spec, template)
from harness.tasks import Task

# Debian releases by the Python they ship: the only versions a registry-free base can have.
DEBIAN_SUITES = {"3.9": "bullseye", "3.11": "bookworm", "3.13": "trixie"}
DEFAULT_REGISTRY = "docker.io/library"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
BUILD_STEP_TIMEOUT_S = 3 * 3600
LABEL = "monkeys.image"  # every image monkeys builds carries it, with its kind as the value


class ImageKind(str, enum.Enum):
    BASE = "base"
    ENV = "env"
    INSTANCE = "instance"


class BuildStatus(str, enum.Enum):
    REUSED = "reused"  # an image of that name (so that recipe) was already there
    BUILT = "built"
    PULLED = "pulled"  # the base came from a registry
    BOOTSTRAPPED = "bootstrapped"  # the base was made from Debian packages
    FAILED = "failed"


class ImageBuildError(RuntimeError):
    """A build that failed, naming the image, the step and the cause."""

    def __init__(self, image: str, step: str, cause: str, for_what: str = ""):
        self.image, self.step, self.cause = image, step, cause
        target = f" (for {for_what})" if for_what else ""
        super().__init__(f"building {image}{target} failed at step {step!r}: {cause}")


def image_exists(client: docker.DockerClient, name: str) -> bool:
    try:
        client.images.get(name)
        return True
    except docker.errors.ImageNotFound:
        return False


# ---------------------------------------------------------------------------------------------
# Host facts the builds need.


def host_ca_bundle() -> Path | None:
    """The CA bundle the host trusts for PyPI: pip's configured cert, else the usual variables and files."""
    for var in ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        if os.environ.get(var) and Path(os.environ[var]).is_file():
            return Path(os.environ[var])
    try:
        done = subprocess.run(["python3", "-m", "pip", "config", "list"], capture_output=True, text=True, timeout=30)
        for line in done.stdout.splitlines():
            key, _, value = line.partition("=")
            if key.endswith(".cert") and Path(value.strip("'\"")).is_file():
                return Path(value.strip("'\""))
    except (OSError, subprocess.TimeoutExpired):
        pass
    for candidate in ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"):
        if Path(candidate).is_file():
            return Path(candidate)
    try:
        import certifi

        return Path(certifi.where())
    except ImportError:
        return None


def _proxy_buildargs() -> dict[str, str]:
    # Docker predefines these build args and keeps them out of the image's history.
    keys = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")
    return {k: os.environ[k] for k in keys if os.environ.get(k)}


# ---------------------------------------------------------------------------------------------
# The builder.


@dataclass
class ImageResult:
    name: str
    kind: ImageKind
    status: BuildStatus
    seconds: float = 0.0
    error: str = ""
    for_what: str = ""


@dataclass
class BuildReport:
    results: list[ImageResult] = field(default_factory=list)

    @property
    def failed(self) -> list[ImageResult]:
        return [r for r in self.results if r.status is BuildStatus.FAILED]

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.results:
            counts[r.status.value] = counts.get(r.status.value, 0) + 1
        return counts


class Reporter:
    """Where the builder says what it is doing; the CLI passes a rich progress display."""

    def start(self, name: str, kind: ImageKind) -> None: ...

    def line(self, name: str, text: str) -> None: ...

    def done(self, result: ImageResult) -> None: ...


RepoLocator = Callable[[str], Path]
"""Maps a task's ``repo`` to a local git repository holding its commits."""


class ImageBuilder:
    """Builds (or reuses, or pulls) every image a set of tasks needs."""

    def __init__(
        self,
        client: docker.DockerClient,
        repos: RepoLocator,
        *,
        registry: str | None = DEFAULT_REGISTRY,
        mirror: str = DEFAULT_MIRROR,
        workers: int = 2,
        reporter: Reporter | None = None,
        log_dir: Path | None = None,
    ):
        self.client = client
        self.repos = repos
        self.registry = registry
        self.mirror = mirror
        self.workers = max(1, workers)
        self.reporter = reporter or Reporter()
        self.log_dir = log_dir
        self._repo_locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    # -- public ------------------------------------------------------------------------------

    def build(self, tasks: Iterable[Task]) -> BuildReport:
        """Make sure every task's image exists; failures are reported, not raised, so others go on."""
        tasks = list(tasks)
        # A prebuilt image (pulled, or made some other way) is used as it is, never built over.
        built_here = [t for t in tasks if builds_here(t) and not (t.image and self.exists(t.image) and not self._ours(t.image))]
        specs = [instance_spec(t) for t in built_here]
        here = {t.instance_id for t in built_here}
        report = BuildReport()
        for task in tasks:
            if task.instance_id not in here:
                report.results.append(self._prebuilt(task))
        bases = list(dict.fromkeys(s.env.base for s in specs))
        envs = list(dict.fromkeys(s.env for s in specs))
        broken: set[str] = set()
        for base in bases:
            result = self._ensure(base.name, ImageKind.BASE, lambda b=base: self._make_base(b))
            report.results.append(result)
            if result.status is BuildStatus.FAILED:
                broken.add(base.name)
        for env in envs:
            if env.base.name in broken:
                report.results.append(self._skipped(env.name, ImageKind.ENV, env.base.name))
                broken.add(env.name)
                continue
            result = self._ensure(env.name, ImageKind.ENV, lambda e=env: self._make_env(e))
            report.results.append(result)
            if result.status is BuildStatus.FAILED:
                broken.add(env.name)

        def one(spec: InstanceSpec) -> ImageResult:
            if spec.env.name in broken:
                return self._skipped(spec.name, ImageKind.INSTANCE, spec.env.name, spec.instance_id)
            result = self._ensure(spec.name, ImageKind.INSTANCE, lambda: self._make_instance(spec), spec.instance_id)
            if spec.alias and result.status is not BuildStatus.FAILED:
                self._tag(spec.name, spec.alias)
            return result

        with ThreadPoolExecutor(self.workers) as pool:
            report.results.extend(pool.map(one, specs))
        return report

    def exists(self, name: str) -> bool:
        return image_exists(self.client, name)

    def _ours(self, name: str) -> bool:
        return LABEL in (self.client.images.get(name).labels or {})

    def _tag(self, name: str, alias: str) -> None:
        image = self.client.images.get(name)
        try:
            if self.client.images.get(alias).id == image.id:
                return
        except docker.errors.ImageNotFound:
            pass
        repository, _, tag = alias.rpartition(":")
        image.tag(repository, tag)
        self.reporter.line(name, f"tagged {alias}")

    # -- steps -------------------------------------------------------------------------------

    def _ensure(self, name: str, kind: ImageKind, make: Callable[[], BuildStatus], for_what: str = "") -> ImageResult:
        if self.exists(name):
            result = ImageResult(name, kind, BuildStatus.REUSED, for_what=for_what)
            self.reporter.done(result)
            return result
        self.reporter.start(name, kind)
        started = time.monotonic()
        try:
            status = make()
            result = ImageResult(name, kind, status, time.monotonic() - started, for_what=for_what)
        except ImageBuildError as err:
            result = ImageResult(name, kind, BuildStatus.FAILED, time.monotonic() - started, str(err), for_what)
        except (docker.errors.DockerException, OSError, subprocess.SubprocessError) as err:
            message = str(ImageBuildError(name, "engine", str(err).strip()[-600:], for_what))
            result = ImageResult(name, kind, BuildStatus.FAILED, time.monotonic() - started, message, for_what)
        self.reporter.done(result)
        return result

    def _prebuilt(self, task: Task) -> ImageResult:
        name = image_name(task)
        if self.exists(name):
            result = ImageResult(name, ImageKind.INSTANCE, BuildStatus.REUSED, for_what=task.instance_id)
        else:
            error = f"{task.instance_id}: prebuilt image {name} is not here, and its row has no env_recipe to build it from"
            result = ImageResult(name, ImageKind.INSTANCE, BuildStatus.FAILED, error=error, for_what=task.instance_id)
        self.reporter.done(result)
        return result

    def _skipped(self, name: str, kind: ImageKind, parent: str, for_what: str = "") -> ImageResult:
        result = ImageResult(name, kind, BuildStatus.FAILED, error=f"not built: its parent {parent} failed", for_what=for_what)
        self.reporter.done(result)
        return result

    def _make_base(self, spec: BaseSpec) -> BuildStatus:
        labels = {LABEL: ImageKind.BASE.value, "monkeys.python": spec.python}
        pull_error = ""
        if self.registry:
            source = f"{self.registry}/python:{spec.python}-slim"
            try:
                self._pull(spec.name, source)
                dockerfile = template("base.Dockerfile").format(source=source)
                self._docker_build(spec.name, dockerfile, {}, {**labels, "monkeys.source": f"pull:{source}"})
                return BuildStatus.PULLED
            except (ImageBuildError, docker.errors.DockerException) as err:
                pull_error = _first_line(err)
                self.reporter.line(spec.name, f"no registry base ({pull_error}); bootstrapping from Debian packages")
        self._debootstrap(spec, labels, pull_error)
        return BuildStatus.BOOTSTRAPPED

    def _pull(self, name: str, source: str) -> None:
        repository, _, tag = source.rpartition(":")
        for event in self.client.api.pull(repository, tag=tag, stream=True, decode=True):
            if "error" in event:
                raise ImageBuildError(name, f"pull {source}", event["error"])
            if event.get("status"):
                self.reporter.line(name, f"pull {source}: {event['status']} {event.get('progress', '')}")

    def _debootstrap(self, spec: BaseSpec, labels: dict[str, str], pull_error: str) -> None:
        name = spec.name
        suite = DEBIAN_SUITES.get(spec.python)
        why = f" (pulling failed: {pull_error})" if pull_error else ""
        if suite is None:
            known = ", ".join(sorted(DEBIAN_SUITES))
            raise ImageBuildError(name, "debootstrap", f"no Debian release ships Python {spec.python} (have {known}){why}")
        if os.geteuid() != 0 or not shutil.which("debootstrap"):
            raise ImageBuildError(
                name, "debootstrap",
                f"building a base without a registry needs root and debootstrap (apt-get install debootstrap){why}",
            )
        work = Path(tempfile.mkdtemp(prefix="monkeys-base-", dir=os.environ.get("MONKEYS_TMP")))
        try:
            rootfs = work / "rootfs"
            cmd = ["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", suite, str(rootfs), self.mirror]
            self._stream_process(name, "debootstrap", cmd)
            # Package caches and docs are dead weight in every container.
            for junk in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man"):
                shutil.rmtree(rootfs / junk, ignore_errors=True)
            tarball = work / "rootfs.tar"
            self._stream_process(name, "tar", ["tar", "-C", str(rootfs), "-cf", str(tarball), "."])
            repository, _, tag = name.rpartition(":")
            all_labels = {**labels, "monkeys.source": f"debootstrap:{suite}"}
            changes = [
                "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8",
                'CMD ["bash"]',
                *(f"LABEL {k}={json.dumps(v)}" for k, v in all_labels.items()),
            ]
            self.reporter.line(name, "docker import")
            self.client.api.import_image_from_file(str(tarball), repository=repository, tag=tag, changes=changes)
            if not self.exists(name):
                raise ImageBuildError(name, "docker import", "the engine accepted the import but no image appeared")
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _make_env(self, spec: EnvSpec) -> BuildStatus:
        ca = host_ca_bundle()
        files = {
            "activate": template("activate").encode(),
            "requirements.txt": "".join(f"{p}\n" for p in spec.packages).encode(),
            # An empty bundle leaves pip on the image's own CAs.
            "ca.pem": ca.read_bytes() if ca else b"",
        }
        dockerfile = template("env.Dockerfile").format(base=spec.base.name) + (spec.dockerfile.strip() + "\n" if spec.dockerfile else "")
        labels = {LABEL: ImageKind.ENV.value, "monkeys.packages": json.dumps(list(spec.packages))}
        if not ca:
            dockerfile = dockerfile.replace("PIP_CERT=/tmp/monkeys-env/ca.pem ", "")
        self._docker_build(spec.name, dockerfile, files, labels)
        return BuildStatus.BUILT

    def _make_instance(self, spec: InstanceSpec) -> BuildStatus:
        ref = f"refs/monkeys/{spec.commit}"
        with tempfile.TemporaryDirectory(prefix="monkeys-ctx-") as tmp:
            bundle = Path(tmp) / "repo.bundle"
            self._bundle(spec, ref, bundle)
            install = f"RUN {spec.install}" if spec.install else ""
            dockerfile = template("instance.Dockerfile").format(env=spec.env.name, ref=ref, commit=spec.commit, install=install)
            labels = {LABEL: ImageKind.INSTANCE.value, "monkeys.instance": spec.instance_id, "monkeys.commit": spec.commit}
            self._docker_build(spec.name, dockerfile, {"repo.bundle": bundle.read_bytes()}, labels, spec.instance_id)
        return BuildStatus.BUILT

    def _bundle(self, spec: InstanceSpec, ref: str, out: Path) -> None:
        try:
            repo = self.repos(spec.repo)
        except (KeyError, FileNotFoundError, ValueError) as err:
            raise ImageBuildError(spec.name, "locate repository", f"no local repository for {spec.repo}: {err}", spec.instance_id) from None
        with self._repo_lock(str(repo)):
            for cmd, step in (
                (["git", "-C", str(repo), "update-ref", ref, spec.commit], "find base_commit"),
                (["git", "-C", str(repo), "bundle", "create", "-q", str(out), ref], "git bundle"),
            ):
                done = subprocess.run(cmd, capture_output=True, text=True)
                if done.returncode != 0:
                    cause = f"{spec.repo} at {repo}: {done.stderr.strip()[-400:]}"
                    raise ImageBuildError(spec.name, step, cause, spec.instance_id)

    def _repo_lock(self, key: str) -> threading.Lock:
        with self._locks_guard:
            return self._repo_locks.setdefault(key, threading.Lock())

    # -- the one place that runs `docker build` ----------------------------------------------

    def _docker_build(self, name: str, dockerfile: str, files: dict[str, bytes], labels: dict[str, str], for_what: str = "") -> None:
        context = io.BytesIO(tar_bytes({"Dockerfile": dockerfile, **files}))
        step, log = "FROM", []
        stream = self.client.api.build(
            fileobj=context, custom_context=True, tag=name, rm=True, forcerm=True, decode=True,
            labels=labels, buildargs=_proxy_buildargs(),
            timeout=BUILD_STEP_TIMEOUT_S,  # a quiet `pip install` step says nothing for minutes
        )
        for chunk in stream:
            text = chunk.get("stream", "")
            if text.strip():
                log.append(text.rstrip())
                if text.startswith("Step "):
                    step = text.split(" : ", 1)[-1].strip()
                    self.reporter.line(name, text.strip())
            if "error" in chunk:
                self._save_log(name, log + [chunk["error"]])
                tail = "\n".join(log[-8:])
                raise ImageBuildError(name, step, f"{chunk['error'].strip()}\n{tail}".strip(), for_what)
        self._save_log(name, log)

    def _stream_process(self, name: str, step: str, cmd: list[str]) -> None:
        log: list[str] = []
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                log.append(line.rstrip())
                self.reporter.line(name, f"{step}: {line.strip()}")
        if proc.returncode != 0:
            self._save_log(name, log)
            raise ImageBuildError(name, step, f"exit {proc.returncode}: " + "\n".join(log[-8:]))

    def _save_log(self, name: str, lines: list[str]) -> None:
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            (self.log_dir / (name.replace("/", "_").replace(":", "_") + ".log")).write_text("\n".join(lines) + "\n")


def _first_line(err: Exception) -> str:
    lines = str(err).strip().splitlines()
    return lines[0][:300] if lines else type(err).__name__
