"""Task images: one builder, images named by a hash of their recipe, no registry required.

Three layers, laid out like the official SWE-bench images:
  base      Debian or Ubuntu with python3, venv, git. Made from an image given for its Python
            (--base-image), else pulled as python:<version>-slim where a registry answers, else
            bootstrapped from the packages of the release that ships that Python (RELEASES in
            harness/image_names.py; debootstrap + docker import).
  env       base + a self-contained prefix at /opt/miniconda3/envs/testbed (its own interpreter
            binary and site-packages, as a conda env) holding a current pip/setuptools/wheel and the
            recipe's packages; the host's CA bundle kept for every later step that reaches PyPI; a
            shim so the official `source /opt/miniconda3/bin/activate && conda activate testbed` works.
  instance  env + the task's repository at base_commit in /testbed: its history and the tags on it
            or its ancestors, nothing later.

A name carries a digest of everything that determines the image (the recipe, the Dockerfile
template, the parent's name), so a changed recipe rebuilds and an unchanged one is reused.
"""

from __future__ import annotations

import contextlib
import enum
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import docker
import docker.errors

from harness.containers import tar_bytes
from harness.config import images_data
from harness.image_names import (BASE_PACKAGES, BaseSpec, Distribution, EnvSpec, InstanceSpec, NoRelease, builds_here,
                                 image_name, instance_spec, release_for, template)
from harness.tasks import Task
from images.official_env import project_name
from harness.tls import host_ca_bundle

# A registry-free base is bootstrapped from the release that ships its Python: the table is
# harness.image_names.RELEASES (a base's name depends on its release, so it lives with the names).
DEFAULT_REGISTRY = "docker.io/library"
DEFAULT_MIRROR = Distribution.DEBIAN.default_mirror()
DEFAULT_UBUNTU_MIRROR = Distribution.UBUNTU.default_mirror()  # this host's architecture's archive
BUILD_STEP_TIMEOUT_S = 3 * 3600
LABEL = "monkeys.image"  # every image monkeys builds carries it, with its kind as the value
BUNDLE_REF = "refs/heads/monkeys-base"  # base_commit's ref inside a task's bundle, dropped once checked out


class ImageKind(str, enum.Enum):
    BASE = "base"
    ENV = "env"
    INSTANCE = "instance"


class BuildStatus(str, enum.Enum):
    REUSED = "reused"  # an image of that name (so that recipe) was already there
    BUILT = "built"
    PULLED = "pulled"  # the base came from a registry
    BOOTSTRAPPED = "bootstrapped"  # the base was made from a release's packages (debootstrap)
    GIVEN = "given"  # the base was made from an image named with --base-image
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


ENV_DIR = "/opt/miniconda3/envs/testbed"
ENV_FREEZE = f"{ENV_DIR}/monkeys-freeze.txt"  # `pip list --format=freeze` of the env
TOOLS = ("pip", "setuptools", "wheel")

# A requirement pinned to one version: "name==1.2", with extras or a marker, but no wildcard.
_EXACT_PIN = re.compile(r"^\s*[A-Za-z0-9][A-Za-z0-9._-]*(\[[^\]]*\])?\s*===?\s*[^\s*,;]+\s*(;.*)?$")


def exact_pin(line: str) -> bool:
    """Whether a requirement line pins one exact version (those install outside a date bound)."""
    return bool(_EXACT_PIN.match(line)) and "*" not in line.split(";")[0]


def resolved(freeze: str) -> str:
    """The ``monkeys.resolved`` label: every installed distribution as name==version, space-separated."""
    return " ".join(line.strip() for line in freeze.splitlines() if "==" in line)


def still_missing(skipped: list[str], freeze: str) -> list[str]:
    """The best-effort lines pip could not install that the env still lacks (a later step may have
    installed one as another package's dependency)."""
    installed = {project_name(line) for line in freeze.splitlines() if "==" in line}
    return [line for line in skipped if project_name(line) not in installed]


def _lines(lines: Iterable[str]) -> bytes:
    return "".join(f"{line}\n" for line in lines).encode()


def env_tools(freeze: str) -> dict[str, str]:
    """The labels recording the env's pip, setuptools and wheel (``monkeys.pip`` ...), from its freeze."""
    versions = {}
    for line in freeze.splitlines():
        name, sep, version = line.partition("==")
        if sep:
            versions[name.strip().lower()] = version.strip()
    return {f"monkeys.{tool}": versions.get(tool, "") for tool in TOOLS}


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
        ubuntu_mirror: str = DEFAULT_UBUNTU_MIRROR,
        base_images: Mapping[str, str] | None = None,
        workers: int = 2,
        reporter: Reporter | None = None,
        log_dir: Path | None = None,
    ):
        self.client = client
        self.repos = repos
        self.registry = registry
        self.mirror = mirror
        self.mirrors = {Distribution.DEBIAN: mirror, Distribution.UBUNTU: ubuntu_mirror}
        # Python version -> an image to make that version's base from, instead of pulling or bootstrapping.
        self.base_images = dict(base_images or {})
        self.workers = max(1, workers)
        self.reporter = reporter or Reporter()
        self.log_dir = log_dir

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
        # Which tasks need each base, so a base that cannot be made names them.
        needed_by: dict[str, list[str]] = {}
        for s in specs:
            needed_by.setdefault(s.env.base.python, []).append(s.instance_id)
        for base in bases:
            result = self.make_base(base, tuple(needed_by[base.python]))
            report.results.append(result)
            if result.status is BuildStatus.FAILED:
                broken.add(base.name)

        # Every base is made before any env; envs are then built side by side, each failure
        # isolated to its own instances.
        def one_env(env: EnvSpec) -> ImageResult:
            if env.base.name in broken:
                return self._skipped(env.name, ImageKind.ENV, env.base.name)
            return self._ensure(env.name, ImageKind.ENV, lambda: self._make_env(env))

        with ThreadPoolExecutor(self.workers) as pool:
            env_results = list(pool.map(one_env, envs))
        report.results.extend(env_results)
        broken.update(r.name for r in env_results if r.status is BuildStatus.FAILED)

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

    def make_base(self, spec: BaseSpec, needed_by: tuple[str, ...] = ()) -> ImageResult:
        """One base image, made (or reused) on its own; ``needed_by`` (instance ids) is named if it cannot be."""
        return self._ensure(spec.name, ImageKind.BASE, lambda: self._make_base(spec, needed_by))

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

    def _make_base(self, spec: BaseSpec, needed_by: tuple[str, ...] = ()) -> BuildStatus:
        """A base from, in order: the image given for its Python (--base-image), the registry's
        python:<version>-slim, or the packages of the release that ships its Python (debootstrap)."""
        labels = {LABEL: ImageKind.BASE.value, "monkeys.python": spec.python}
        given = self.base_images.get(spec.python)
        if given:
            self._from_image(spec, given, labels)
            return BuildStatus.GIVEN
        pull_error = ""
        if self.registry:
            source = f"{self.registry}/python:{spec.python}-slim"
            try:
                self._pull(spec.name, source)
                dockerfile = template("base.Dockerfile").format(source=source, check="")
                self._docker_build(spec.name, dockerfile, {}, {**labels, "monkeys.source": f"pull:{source}"})
                return BuildStatus.PULLED
            except (ImageBuildError, docker.errors.DockerException) as err:
                pull_error = _first_line(err)
                self.reporter.line(spec.name, f"no registry base ({pull_error}); bootstrapping from a release's packages")
        self._debootstrap(spec, labels, pull_error, needed_by)
        return BuildStatus.BOOTSTRAPPED

    def _from_image(self, spec: BaseSpec, given: str, labels: dict[str, str]) -> None:
        """The base made from an image the user named for its Python: used as it is where it is here,
        else pulled; git, venv etc. are added where missing, and its python3 must be that version."""
        if not self.exists(given):
            self._pull(spec.name, given)
        # A user's image is the one source whose Python is not known in advance: check it, so a
        # wrong image fails here, naming itself, rather than in some task's tests.
        want = spec.python
        check = (f"RUN python3 -c \"import sys; v = '%d.%d' % sys.version_info[:2]; "
                 f"sys.exit(0 if v == '{want}' else 'python3 in {given} is Python ' + v + ', not {want} (--base-image {want}={given})')\"")
        dockerfile = template("base.Dockerfile").format(source=given, check=check)
        self._docker_build(spec.name, dockerfile, {}, {**labels, "monkeys.source": f"image:{given}"})

    def _pull(self, name: str, source: str) -> None:
        # "host:5000/python" has a colon but no tag: only a colon after the last slash starts one.
        repository, sep, tag = source.rpartition(":")
        if not sep or "/" in tag:
            repository, tag = source, "latest"
        for event in self.client.api.pull(repository, tag=tag, stream=True, decode=True):
            if "error" in event:
                raise ImageBuildError(name, f"pull {source}", event["error"])
            if event.get("status"):
                self.reporter.line(name, f"pull {source}: {event['status']} {event.get('progress', '')}")

    def _debootstrap(self, spec: BaseSpec, labels: dict[str, str], pull_error: str, needed_by: tuple[str, ...] = ()) -> None:
        name = spec.name
        why = f" (pulling failed: {pull_error})" if pull_error else ""
        try:
            release = release_for(spec.python, needed_by)
        except NoRelease as err:
            raise ImageBuildError(name, "choose a release", f"{err}{why}") from None
        if os.geteuid() != 0 or not shutil.which("debootstrap"):
            raise ImageBuildError(
                name, "debootstrap",
                f"building a base without a registry needs root and debootstrap (apt-get install debootstrap){why}",
            )
        mirror = self.mirrors[release.distribution]
        cmd = ["debootstrap", "--variant=minbase", f"--components={','.join(release.components)}",
               f"--include={','.join(BASE_PACKAGES)}"]
        if release.distribution is Distribution.UBUNTU:
            # Debian's debootstrap checks Ubuntu's Release files against Ubuntu's archive keys, which
            # Debian no longer packages: monkeys ships them (ubuntu-keyring's 2012 and 2018 archive keys).
            cmd.append(f"--keyring={images_data('env', 'ubuntu-archive-keyring.gpg')}")
        work = Path(tempfile.mkdtemp(prefix="monkeys-base-", dir=os.environ.get("MONKEYS_TMP")))
        try:
            rootfs = work / "rootfs"
            cmd += [release.release, str(rootfs), mirror, *([release.script] if release.script else [])]
            self._stream_process(name, "debootstrap", cmd)
            # Package caches and docs are dead weight in every container.
            for junk in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man"):
                shutil.rmtree(rootfs / junk, ignore_errors=True)
            tarball = work / "rootfs.tar"
            self._stream_process(name, "tar", ["tar", "-C", str(rootfs), "-cf", str(tarball), "."])
            repository, _, tag = name.rpartition(":")
            all_labels = {
                **labels, "monkeys.source": f"debootstrap:{release.release}",
                "monkeys.distribution": release.distribution.value, "monkeys.release": release.release,
            }
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
            "env-packages.sh": template("env-packages.sh").encode(),
            "first.txt": _lines(spec.first_packages),
            "requirements.txt": _lines(spec.packages),
            "first-pins.txt": _lines(p for p in spec.first_packages if exact_pin(p)),
            "pins.txt": _lines(p for p in spec.packages if exact_pin(p)),
            "best-effort.txt": _lines(spec.best_effort),
            "as-of": spec.as_of.encode(),
            # An empty bundle leaves the image on its own CAs (the template copies those instead).
            "ca.pem": ca.read_bytes() if ca else b"",
        }
        dockerfile = template("env.Dockerfile").format(base=spec.base.name) + (spec.dockerfile.strip() + "\n" if spec.dockerfile else "")
        labels = {LABEL: ImageKind.ENV.value, "monkeys.packages": json.dumps(list(spec.packages))}
        if spec.first_packages:
            labels["monkeys.first-packages"] = json.dumps(list(spec.first_packages))
        if spec.best_effort or spec.as_of:
            labels.update({"monkeys.best-effort": json.dumps(list(spec.best_effort)), "monkeys.as-of": spec.as_of})

        def outcome(read: Callable[[str], str]) -> dict[str, str]:
            freeze = read(ENV_FREEZE)
            return {
                **env_tools(freeze),
                "monkeys.resolved": resolved(freeze),
                "monkeys.resolution": read(f"{ENV_DIR}/monkeys-resolution.txt").strip(),
                "monkeys.skipped": json.dumps(still_missing(read(f"{ENV_DIR}/monkeys-skipped.txt").split(), freeze)),
            }

        self._build_then_label(spec.name, dockerfile, files, labels, outcome)
        return BuildStatus.BUILT

    def _build_then_label(self, name: str, dockerfile: str, files: dict[str, bytes], labels: dict[str, str],
                          outcome: Callable[[Callable[[str], str]], dict[str, str]], for_what: str = "") -> None:
        """Builds under a stage tag first, then the final name with labels read from the stage's
        files (what pip installed is known only once it has run; a build stopped in between has no
        final name, so it is never reused)."""
        stage = f"{name}-unlabelled"
        try:
            self._docker_build(stage, dockerfile, files, labels, for_what)
        except ImageBuildError as err:  # named as the image asked for, not its stage
            raise ImageBuildError(name, err.step, err.cause, for_what) from None
        try:
            with self._files_of(stage) as read:
                found = outcome(read)
            self._docker_build(name, f"FROM {stage}\n", {}, {**labels, **found}, for_what)
        finally:
            self.client.images.remove(stage, noprune=True)

    @contextlib.contextmanager
    def _files_of(self, image: str) -> Iterator[Callable[[str], str]]:
        """A reader of files' text from an image, through one created (never started) container."""
        container = self.client.containers.create(image, command=["true"], network_disabled=True)

        def read(path: str) -> str:
            try:
                chunks, _ = container.get_archive(path)
            except docker.errors.NotFound:
                raise ImageBuildError(image, f"read {path}", "the environment step did not write it") from None
            with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
                member = tar.next()
                extracted = tar.extractfile(member) if member else None
                if extracted is None:
                    raise ImageBuildError(image, f"read {path}", "not a regular file")
                return extracted.read().decode()

        try:
            yield read
        finally:
            container.remove(force=True)

    def _make_instance(self, spec: InstanceSpec) -> BuildStatus:
        with tempfile.TemporaryDirectory(prefix="monkeys-ctx-") as tmp:
            bundle = Path(tmp) / "repo.bundle"
            self._bundle(spec, bundle, Path(tmp))
            files = {"repo.bundle": bundle.read_bytes()}
            setup = ""
            if spec.setup or spec.install:
                files.update({
                    "instance-setup.sh": template("instance-setup.sh").encode(),
                    "setup.sh": _lines(spec.setup),
                    "install.sh": (spec.install + "\n").encode() if spec.install else b"",
                })
                # The shell comment names the commands in the build's step line, so a failure names them.
                shown = "; ".join([*spec.setup, spec.install]).replace("\n", " ")
                setup = ("COPY instance-setup.sh setup.sh install.sh /tmp/monkeys-instance/\n"
                         "RUN bash /tmp/monkeys-instance/instance-setup.sh /tmp/monkeys-instance && rm -rf /tmp/monkeys-instance"
                         f"  # {shown}\n")
            dockerfile = template("instance.Dockerfile").format(env=spec.env.name, ref=BUNDLE_REF, commit=spec.commit, setup=setup)
            labels = {LABEL: ImageKind.INSTANCE.value, "monkeys.instance": spec.instance_id, "monkeys.commit": spec.commit}
            if not setup:
                self._docker_build(spec.name, dockerfile, files, labels, spec.instance_id)
                return BuildStatus.BUILT

            def outcome(read: Callable[[str], str]) -> dict[str, str]:
                return {"monkeys.resolved": resolved(read(ENV_FREEZE)),
                        "monkeys.install-resolution": read(f"{ENV_DIR}/monkeys-install-resolution.txt").strip()}

            self._build_then_label(spec.name, dockerfile, files, labels, outcome, spec.instance_id)
        return BuildStatus.BUILT

    def _bundle(self, spec: InstanceSpec, out: Path, scratch_dir: Path) -> None:
        """A bundle of the repository as the official images have it: base_commit's history and every
        tag whose commit is base_commit or an ancestor of it (setuptools_scm projects read their
        version from those), nothing later. The refs are made in a scratch repository that borrows
        the mirror's objects (git alternates), so the mirror itself is only read, never written."""
        try:
            repo = Path(self.repos(spec.repo)).resolve()
        except (KeyError, FileNotFoundError, ValueError, TypeError) as err:
            raise ImageBuildError(spec.name, "locate repository", f"no local repository for {spec.repo}: {err}", spec.instance_id) from None

        def git(step: str, where: Path, *args: str, stdin: str | None = None) -> str:
            done = subprocess.run(["git", "-C", str(where), *args], input=stdin, capture_output=True, text=True)
            if done.returncode != 0:
                cause = f"{spec.repo} at {repo}: {done.stderr.strip()[-400:] or f'git {args[0]} exited {done.returncode}'}"
                raise ImageBuildError(spec.name, step, cause, spec.instance_id)
            return done.stdout

        found = subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", f"{spec.commit}^{{commit}}"],
                               capture_output=True, text=True)
        if found.returncode != 0:
            cause = f"{spec.repo} at {repo} has no commit {spec.commit}; fetch it into that repository (or give another with --repo-mirror)"
            raise ImageBuildError(spec.name, "find base_commit", cause, spec.instance_id)
        commit = found.stdout.strip()
        tags = git("find tags", repo, "for-each-ref", f"--merged={commit}", "--format=%(objectname) %(refname)", "refs/tags")
        common = Path(git("find the object store", repo, "rev-parse", "--git-common-dir").strip())
        objects = (common if common.is_absolute() else repo / common).resolve() / "objects"
        scratch = scratch_dir / "scratch.git"
        git("git init", scratch_dir, "init", "-q", "--bare", str(scratch))
        (scratch / "objects" / "info" / "alternates").write_text(f"{objects}\n")
        refs = [f"create {BUNDLE_REF} {commit}"]
        refs += [f"create {ref} {sha}" for sha, _, ref in (line.partition(" ") for line in tags.splitlines()) if ref]
        git("set refs", scratch, "update-ref", "--stdin", stdin="\n".join(refs) + "\n")
        git("git bundle", scratch, "bundle", "create", "-q", str(out), "--all")

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
