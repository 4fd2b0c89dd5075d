"""Shared fixtures. A test that needs Docker or the shared data fails under CI=true when it cannot
run (a skip there would hide a missing install step); elsewhere it is skipped with the reason."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from harness import engine
from harness.containers import OWNER_LABEL, RUN_LABEL, alive

REPO_ROOT = Path(__file__).resolve().parents[1]
LITE_DIR = Path(os.environ.get("MONKEYS_TEST_LITE", REPO_ROOT.parent / "shared" / "data" / "swe-bench-lite"))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str):
    """Fail in CI, skip elsewhere."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: this must run here; fix the install step in .ci/run)", pytrace=False)
    pytest.skip(reason)


@contextlib.contextmanager
def loopback_registry(root: Path):
    """Debian's docker-registry serving from ``root`` on a free loopback port; yields "127.0.0.1:PORT"."""
    binary = shutil.which("docker-registry")
    if not binary:
        unavailable("Debian's docker-registry is not installed")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    server = subprocess.Popen([binary, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail("the loopback registry did not start")
                time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(10)


@pytest.fixture(scope="session")
def lite_rows() -> Path:
    path = LITE_DIR / "test.jsonl"
    if not path.is_file():
        unavailable(f"the shared SWE-bench Lite rows are not at {path}")
    return path


def _ours(container) -> bool:
    host, _, pid = container.labels.get(OWNER_LABEL, ":").partition(":")
    return host == socket.gethostname() and pid.isdigit() and (int(pid) == os.getpid() or not alive(int(pid)))


@pytest.fixture(scope="session")
def docker_client():
    try:
        client = engine.connect()
    except engine.EngineUnavailable as err:
        unavailable(str(err))
    yield client
    # Ours: made by this process or by one that has exited (the CLI tests' subprocesses). Another
    # live monkeys on this host (a concurrent run) keeps its containers.
    leftovers = [c for c in client.containers.list(all=True, filters={"label": RUN_LABEL}) if _ours(c)]
    for container in leftovers:
        container.remove(force=True)
    assert not leftovers, f"tests left containers behind: {[c.name for c in leftovers]}"


@pytest.fixture(scope="session")
def bundled_tasks():
    from harness.tasks import load_tasks

    return load_tasks().tasks


@pytest.fixture(scope="session")
def built_suite(docker_client, bundled_tasks):
    """Every bundled image, built (or reused) once per session, registry-free as on an air-gapped host."""
    from images.build import ImageBuilder
    from harness.suite import materialize

    report = ImageBuilder(docker_client, materialize, registry=None, workers=2).build(bundled_tasks)
    assert not report.failed, "\n".join(r.error for r in report.failed)
    return report


@pytest.fixture
def make_evaluator(docker_client, built_suite, tmp_path_factory):
    """Evaluators over a fresh evaluation cache, so the tests they run are really run."""
    from harness.evalcache import EvalCache
    from harness.evalconfig import EvalConfig
    from harness.evaluate import Evaluator

    made = []

    def make(run: str = "tests", cache=None, **config) -> Evaluator:
        cache = cache or EvalCache(tmp_path_factory.mktemp("evalcache") / "evaluations.sqlite")
        evaluator = Evaluator(docker_client, cache, EvalConfig(**{"workers": 2, **config}), run=run)
        made.append(evaluator)
        return evaluator

    yield make
    for evaluator in made:
        evaluator.cache.close()
