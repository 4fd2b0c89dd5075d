"""Images that behave like the official ones: the repository with its tags up to base_commit and
nothing later, an env that is a prefix of its own (a symlinked interpreter keeps its packages), a
current pip, and the host's CA bundle on every step that reaches PyPI."""

import dataclasses
import subprocess
from pathlib import Path

import pytest

from harness.containers import ContainerRuntime
from harness.image_names import image_name, instance_spec
from harness.suite import materialize, tags
from images.build import BUNDLE_REF, BuildStatus, ImageBuilder, ImageKind, env_tools, image_exists

# textkit-3's base_commit is two commits after the tag v0.1.0 and before v0.2.0 and v0.3.0.
EARLY = "monkeys-suite__textkit-3"


def _task(bundled_tasks, instance_id):
    return next(t for t in bundled_tasks if t.instance_id == instance_id)


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def _snapshot(git_dir: Path) -> dict[str, bytes]:
    """Every file of a repository's .git, by path: what a build must leave as it found it."""
    return {str(p.relative_to(git_dir)): p.read_bytes() for p in sorted(git_dir.rglob("*")) if p.is_file()}


def test_env_tools_reads_the_tools_versions_from_a_freeze():
    freeze = "iniconfig==2.0.0\npip==25.3\nsetuptools==80.9.0\nWheel==0.45.1\n"
    assert env_tools(freeze) == {"monkeys.pip": "25.3", "monkeys.setuptools": "80.9.0", "monkeys.wheel": "0.45.1"}
    assert env_tools("pip==9.0.1\n")["monkeys.wheel"] == ""


def test_the_bundle_holds_the_tags_up_to_base_commit_and_leaves_the_mirror_untouched(bundled_tasks, tmp_path):
    task = _task(bundled_tasks, EARLY)
    mirror = materialize(task.repo, tmp_path / "mirrors")
    assert set(tags(task.repo)) == {"v0.1.0", "v0.2.0", "v0.3.0"}
    # Replayed anywhere, the tags (annotated ones' objects too) are the same, as the commits are.
    assert _git(mirror, "show-ref", "--tags", "-d") == _git(materialize(task.repo), "show-ref", "--tags", "-d")
    before = _snapshot(mirror / ".git")
    out = tmp_path / "work"
    out.mkdir()
    ImageBuilder(None, lambda repo: mirror)._bundle(instance_spec(task), out / "repo.bundle", out)
    assert _snapshot(mirror / ".git") == before, "building wrote into the given mirror"
    heads = dict(line.split()[::-1] for line in _git(out, "bundle", "list-heads", "repo.bundle").splitlines())
    assert heads == {BUNDLE_REF: task.base_commit, "refs/tags/v0.1.0": _git(mirror, "rev-parse", "v0.1.0").strip()}


@pytest.mark.docker
def test_an_instance_has_the_tags_up_to_base_commit_and_no_later_object(docker_client, bundled_tasks, built_suite):
    task = _task(bundled_tasks, EARLY)
    mirror = materialize(task.repo)
    history = _git(mirror, "rev-list", "--count", task.base_commit).strip()
    script = (
        "set -eu; cd /testbed\n"
        "git describe --tags\n"
        "echo tags: $(git tag)\n"
        "echo refs: $(git for-each-ref --format='%(refname)')\n"
        "echo commits: $(git log --all --format=%H | wc -l)\n"
        "echo objects: $(git cat-file --batch-all-objects --batch-check | wc -l) $(git rev-list --objects --all | wc -l)\n"
    )
    result = ContainerRuntime(docker_client, run="test-image-env").run_script(image_name(task), script)
    assert result.exit_code == 0, result.output
    describe, tag_line, refs, commits, objects = result.output.splitlines()
    assert describe == f"v0.1.0-2-g{task.base_commit[:7]}"
    assert tag_line == "tags: v0.1.0"  # v0.2.0 and v0.3.0 are on later commits
    assert refs == "refs: refs/heads/main refs/tags/v0.1.0"
    assert commits == f"commits: {history}"
    _, stored, reachable = objects.split()
    assert stored == reachable, "the object store holds objects no ref reaches"


@pytest.mark.docker
def test_the_env_is_a_prefix_of_its_own_with_the_host_ca_bundle(docker_client, bundled_tasks, built_suite):
    task = _task(bundled_tasks, EARLY)
    env = instance_spec(task).env
    script = (
        "set -u; E=/opt/miniconda3/envs/testbed\n"
        "real=$(readlink -f $E/bin/python); echo resolved: $real\n"
        # tox-current-env runs the resolved path; a symlink made elsewhere is the other way in.
        "$real -c 'import pytest' && echo resolved-imports\n"
        "ln -s $E/bin/python /tmp/py && /tmp/py -c 'import pytest' && echo symlink-imports\n"
        "env -i /tmp/py -c 'import pytest' && echo symlink-imports-without-env\n"
        "(source /opt/miniconda3/bin/activate && conda activate testbed && python -c 'import sys; print(sys.prefix)')\n"
        "test -s \"$PIP_CERT\" && echo cert: $PIP_CERT $SSL_CERT_FILE\n"
        "env -i $E/bin/python -m pip config list\n"
        "python -m pip --version | cut -d' ' -f2\n"
    )
    result = ContainerRuntime(docker_client, run="test-image-env").run_script(image_name(task), script)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    resolved = lines[0].removeprefix("resolved: ")
    assert resolved.startswith("/opt/miniconda3/envs/testbed/bin/python"), lines
    assert lines[1:5] == ["resolved-imports", "symlink-imports", "symlink-imports-without-env", "/opt/miniconda3/envs/testbed"]
    ca = "/opt/miniconda3/ssl/ca.pem"
    assert lines[5] == f"cert: {ca} {ca}"
    assert f"global.cert='{ca}'" in lines[6:-1], lines  # the env's own pip.conf
    labels = docker_client.images.get(env.name).labels
    assert labels["monkeys.image"] == ImageKind.ENV.value
    assert labels["monkeys.pip"] == lines[-1] and int(lines[-1].split(".")[0]) >= 23, (labels, lines[-1])
    assert labels["monkeys.setuptools"] and labels["monkeys.wheel"]


@pytest.mark.docker
def test_two_envs_build_side_by_side_and_an_install_step_reaches_pypi(docker_client, bundled_tasks, built_suite):
    """Two new envs in one call (workers=2); one task's install step fetches setuptools_scm from PyPI
    through the kept CA bundle, and reads the repository's version from its tags, as a
    setuptools_scm project's install does."""
    early, later = _task(bundled_tasks, EARLY), _task(bundled_tasks, "monkeys-suite__textkit-7")
    install = (
        "pip install -q setuptools-scm==8.1.0 && python -c 'import setuptools_scm; "
        "print(setuptools_scm.get_version(root=\"/testbed\"))' > /tmp/scm-version"
    )
    scm = dataclasses.replace(early, env_recipe=dataclasses.replace(
        early.env_recipe, packages=("pytest==8.3.4", "iniconfig==2.0.0"), install=install))
    other = dataclasses.replace(later, env_recipe=dataclasses.replace(later.env_recipe, packages=("pytest==8.3.4", "iniconfig==1.1.1")))
    specs = [instance_spec(scm), instance_spec(other)]
    made = [name for s in specs for name in (s.name, s.env.name)]
    try:
        report = ImageBuilder(docker_client, materialize, registry=None, workers=2).build([scm, other])
        assert not report.failed, "\n".join(r.error for r in report.failed)
        statuses = {r.name: r.status for r in report.results}
        assert all(statuses[name] is BuildStatus.BUILT for name in made), statuses
        result = ContainerRuntime(docker_client, run="test-image-env").run_script(specs[0].name, "cat /tmp/scm-version")
        assert result.exit_code == 0, result.output
        version = result.output.splitlines()[0]
        assert version.startswith("0.1.1.dev2+g"), version  # from v0.1.0, two commits on; not 0.1.devN
    finally:
        for name in made:
            if image_exists(docker_client, name):
                docker_client.images.remove(name, force=True)


@pytest.mark.docker
def test_a_date_bounded_build_picks_the_older_release_and_commits_the_setup_edits(docker_client, bundled_tasks, built_suite):
    """A local index on loopback holds monkeys-probe 1.0 (2020) and 2.0 (2023). An env resolved as of
    2021 gets 1.0, and so does its instance's install step, even when asked to upgrade; the same env
    with no date gets 2.0. The exact pin (pytest) installs as given either way. The setup command's
    edit is committed on top of base_commit, so the image's starting tree holds it."""
    from tests.package_index import docker_gateway, serve_index

    early, later = _task(bundled_tasks, EARLY), _task(bundled_tasks, "monkeys-suite__textkit-7")
    with serve_index() as index:
        gateway = docker_gateway(docker_client)
        source = ["pytest==8.3.4", f"--extra-index-url {index.url(gateway)}", f"--trusted-host {gateway}", "monkeys-probe"]
        upgrade = f"python -m pip install -q --upgrade --index-url {index.url(gateway)} --trusted-host {gateway} monkeys-probe"
        bounded = dataclasses.replace(early, env_recipe=dataclasses.replace(
            early.env_recipe, packages=tuple(source), as_of="2021-06-01T00:00:00Z", install=upgrade,
            setup=("echo '# edited by the setup step' >> README.md",)))
        today = dataclasses.replace(later, env_recipe=dataclasses.replace(later.env_recipe, packages=tuple(source)))
        specs = [instance_spec(bounded), instance_spec(today)]
        made = [name for s in specs for name in (s.name, s.env.name)]
        try:
            report = ImageBuilder(docker_client, materialize, registry=None, workers=2).build([bounded, today])
            assert not report.failed, "\n".join(r.error for r in report.failed)
            env_labels = docker_client.images.get(specs[0].env.name).labels
            assert "monkeys-probe==1.0" in env_labels["monkeys.resolved"].split()
            assert "pytest==8.3.4" in env_labels["monkeys.resolved"].split()
            assert env_labels["monkeys.resolution"] == "as of 2021-06-01T00:00:00Z"
            labels = docker_client.images.get(specs[0].name).labels
            assert "monkeys-probe==1.0" in labels["monkeys.resolved"].split()
            assert labels["monkeys.install-resolution"].startswith("as of 2021-06-01T00:00:00Z")
            unbounded = docker_client.images.get(specs[1].env.name).labels
            assert "monkeys-probe==2.0" in unbounded["monkeys.resolved"].split()
            assert unbounded["monkeys.resolution"].startswith("unbounded")
            assert any(r.path.startswith("/files/monkeys_probe-1.0") for r in index.requests)

            script = ("git rev-parse HEAD~1 && git log -1 --format=%s && git status --porcelain && tail -1 README.md "
                      "&& python -c 'import monkeys_probe; print(monkeys_probe.VERSION)'")
            result = ContainerRuntime(docker_client, run="test-image-env").run_script(specs[0].name, script)
            assert result.exit_code == 0, result.output
            parent, subject, *rest = result.output.splitlines()
            assert parent == early.base_commit and subject == "monkeys: environment setup"
            assert rest == ["# edited by the setup step", "1.0"]  # a clean tree: status printed nothing
        finally:
            for name in made:
                if image_exists(docker_client, name):
                    docker_client.images.remove(name, force=True)
