"""The local package index (tests/package_index.py) against real pips: the host's, and one in a container.

pip's ``--uploaded-prior-to`` must pick 1.0 (uploaded 2020) for a date in 2021 and 2.0 (uploaded
2023) without one, whether the date comes as the option or as ``PIP_UPLOADED_PRIOR_TO``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from harness.containers import ContainerRuntime
from harness.image_names import instance_spec
from tests.package_index import PROJECT, RELEASES, build_wheel, docker_gateway, serve_index

AS_OF = "2021-06-01T00:00:00Z"  # between the two uploads


def host_pip_env(**extra: str) -> dict[str, str]:
    """The environment for the host's pip, free of this machine's pip settings.

    This host's pip config adds extra indexes and find-links that could also offer a probe; only
    our index may answer. ``--isolated`` would do that too, but it also ignores PIP_* variables,
    and ``PIP_UPLOADED_PRIOR_TO`` is one of the things under test.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    return {**env, "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1", **extra}


def download(index_url: str, into: Path, *options: str, env: dict[str, str] | None = None) -> list[str]:
    """Run the host's ``pip download`` of the probe; return the names of the files it saved."""
    into.mkdir()
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir", "--index-url", index_url,
               PROJECT, "-d", str(into), *options]
    result = subprocess.run(command, env=env or host_pip_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return sorted(p.name for p in into.iterdir())


def test_the_wheels_are_complete_and_reproducible(tmp_path):
    first, again = tmp_path / "a", tmp_path / "b"
    first.mkdir(), again.mkdir()
    wheel = build_wheel(first, RELEASES[0])
    assert wheel.filename == "monkeys_probe-1.0-py3-none-any.whl"
    assert build_wheel(again, RELEASES[0]).sha256 == wheel.sha256  # fixed timestamps: same bytes each run
    with zipfile.ZipFile(wheel.path) as archive:
        names = archive.namelist()
        record = archive.read("monkeys_probe-1.0.dist-info/RECORD").decode().splitlines()
        metadata = archive.read("monkeys_probe-1.0.dist-info/METADATA").decode()
    assert sorted(line.split(",")[0] for line in record) == sorted(names)
    assert "Requires-Python: >=3.5" in metadata.splitlines()


def test_without_a_date_pip_gets_the_newest(tmp_path):
    with serve_index() as index:
        assert download(index.url(), tmp_path / "d") == ["monkeys_probe-2.0-py3-none-any.whl"]
    # pip asked for JSON (PEP 691), the only form with upload times.
    assert index.requests[0].path == f"/simple/{PROJECT}/"
    assert index.requests[0].content_type == "application/vnd.pypi.simple.v1+json"


def test_uploaded_prior_to_gets_the_release_before_the_date(tmp_path):
    with serve_index() as index:
        assert download(index.url(), tmp_path / "d", "--uploaded-prior-to", AS_OF) == [
            "monkeys_probe-1.0-py3-none-any.whl"]


def test_the_environment_variable_works_like_the_option(tmp_path):
    # --uploaded-prior-to is an optparse callback option; pip runs the callback for its
    # environment variable too, so the variable filters as the option does.
    with serve_index() as index:
        env = host_pip_env(PIP_UPLOADED_PRIOR_TO=AS_OF)
        assert download(index.url(), tmp_path / "d", env=env) == ["monkeys_probe-1.0-py3-none-any.whl"]


def test_the_installed_wheel_has_its_version(tmp_path):
    with serve_index() as index:
        command = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-cache-dir", "--index-url", index.url(),
                   "--target", str(tmp_path / "site"), "--uploaded-prior-to", AS_OF, PROJECT]
        result = subprocess.run(command, env=host_pip_env(), capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
    probe = subprocess.run([sys.executable, "-c", "import monkeys_probe; print(monkeys_probe.VERSION)"],
                           env={**os.environ, "PYTHONPATH": str(tmp_path / "site")}, capture_output=True, text=True)
    assert probe.stdout.strip() == "1.0", probe.stderr


def test_old_pips_get_html_and_no_thread_is_left(tmp_path):
    import urllib.request

    before = set(threading.enumerate())
    with serve_index() as index:
        # Old pips ask for text/html only; they get PEP 503 links with hashes.
        page = urllib.request.urlopen(urllib.request.Request(index.url() + f"/{PROJECT}/", headers={"Accept": "text/html"}))
        text = page.read().decode()
        assert page.headers["Content-Type"].startswith("text/html")
        for wheel in index.wheels:
            assert f'href="/files/{wheel.filename}#sha256={wheel.sha256}"' in text
    assert set(threading.enumerate()) <= before


@pytest.mark.docker
def test_a_container_reaches_the_index_through_the_bridge_gateway(docker_client, bundled_tasks, built_suite):
    gateway = docker_gateway(docker_client)
    image = instance_spec(bundled_tasks[0]).env.name
    with serve_index() as index:
        script = (
            "set -e\n"
            f"python -m pip download --no-deps --no-cache-dir --disable-pip-version-check --index-url {index.url(gateway)} "
            f"--trusted-host {gateway} {PROJECT} -d /tmp/probe\n"
            "ls /tmp/probe\n"
        )
        result = ContainerRuntime(docker_client, run="test-package-index").run_script(
            image, script, network=True, timeout=300)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "monkeys_probe-2.0-py3-none-any.whl"
    # The requests came over the bridge, not loopback.
    assert index.requests and all(r.client != "127.0.0.1" for r in index.requests)
