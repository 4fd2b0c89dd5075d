"""Bases for every Python the spec table asks for, without a registry: the release table, one real
Ubuntu base bootstrapped from its archive, and bases made from an image the user names."""

import argparse

import docker.errors
import pytest

from harness.image_names import RELEASES, BaseSpec, Distribution, NoRelease, release_for
from harness.specs import known_repos, known_versions, spec_for
from images.build import BuildStatus, ImageBuilder
from monkeys.commands.images import base_image_option

# The one version the spec table asks for that no release on a current archive ships (Debian's
# buster has moved to archive.debian.org): its bases come from --base-image.
UNSHIPPED = "3.7"


def _task_needing(python: str, instance_id: str = "bases__test-1"):
    from harness.tasks import parse_row

    return parse_row({
        "instance_id": instance_id, "repo": "monkeys-suite/none", "base_commit": "0" * 40, "patch": "",
        "test_patch": "", "problem_statement": "x", "FAIL_TO_PASS": [], "PASS_TO_PASS": [],
        "env_recipe": {"python": python, "packages": []},
    }, "test", 1)


# -- the table, pure -----------------------------------------------------------------------------


def test_each_python_has_the_release_that_ships_it():
    made = {p: (release_for(p).distribution, release_for(p).release) for p in
            ("3.5", "3.6", "3.8", "3.9", "3.10", "3.11", "3.12", "3.13")}
    assert made == {
        "3.5": (Distribution.UBUNTU, "xenial"), "3.6": (Distribution.UBUNTU, "bionic"),
        "3.8": (Distribution.UBUNTU, "focal"), "3.9": (Distribution.DEBIAN, "bullseye"),
        "3.10": (Distribution.UBUNTU, "jammy"), "3.11": (Distribution.DEBIAN, "bookworm"),
        "3.12": (Distribution.UBUNTU, "noble"), "3.13": (Distribution.DEBIAN, "trixie"),
    }
    # Ubuntu keeps python3-venv in universe; one Python, one release.
    assert all("universe" in r.components for r in RELEASES if r.distribution is Distribution.UBUNTU)
    assert len({r.python for r in RELEASES}) == len(RELEASES)
    assert BaseSpec("3.10").release == release_for("3.10") and BaseSpec(UNSHIPPED).release is None


def test_every_python_of_the_spec_table_but_one_has_a_release():
    needed = {spec_for(repo, v).python for repo in known_repos() for v in known_versions(repo)}
    shipped = {r.python for r in RELEASES}
    assert needed - shipped == {UNSHIPPED}


def test_a_python_no_release_ships_names_itself_the_tasks_and_base_image():
    ids = tuple(f"acme__w-{n}" for n in range(5))
    with pytest.raises(NoRelease) as caught:
        release_for(UNSHIPPED, ids)
    message = str(caught.value)
    assert f"no release ships Python {UNSHIPPED}, needed by acme__w-0, acme__w-1, acme__w-2 and 2 more" in message
    assert f"--base-image {UNSHIPPED}=IMAGE" in message and "3.10 (ubuntu jammy)" in message


def test_ubuntu_mirror_follows_the_architecture():
    assert Distribution.UBUNTU.default_mirror("x86_64") == "http://archive.ubuntu.com/ubuntu"
    assert Distribution.UBUNTU.default_mirror("aarch64") == "http://ports.ubuntu.com/ubuntu-ports"
    assert Distribution.DEBIAN.default_mirror("aarch64") == "http://deb.debian.org/debian"


def test_base_image_option_takes_python_equals_image():
    assert base_image_option("3.7=myregistry:5000/python:3.7-slim") == ("3.7", "myregistry:5000/python:3.7-slim")
    for bad in ("3.7", "3=python:3", "3.7=", "python:3.7-slim"):
        with pytest.raises(argparse.ArgumentTypeError, match="PYTHON=IMAGE"):
            base_image_option(bad)


# -- real bases ----------------------------------------------------------------------------------


def _run(client, image: str, script: str) -> str:
    return client.containers.run(image, ["bash", "-c", script], remove=True).decode()


@pytest.fixture(scope="module")
def jammy_base(docker_client):
    """The 3.10 base, bootstrapped from Ubuntu jammy's archive (minutes, once: later runs reuse it)."""
    spec = BaseSpec("3.10")
    base = ImageBuilder(docker_client, lambda repo: None, registry=None).make_base(spec)
    assert base.status in (BuildStatus.BOOTSTRAPPED, BuildStatus.REUSED), base.error
    return spec


@pytest.mark.docker
def test_an_ubuntu_base_has_its_python_git_and_venv(docker_client, jammy_base):
    image = docker_client.images.get(jammy_base.name)
    assert {k: image.labels.get(k) for k in ("monkeys.distribution", "monkeys.release", "monkeys.source")} == {
        "monkeys.distribution": "ubuntu", "monkeys.release": "jammy", "monkeys.source": "debootstrap:jammy"}
    out = _run(docker_client, jammy_base.name,
               "python3 --version && git --version && python3 -m venv /tmp/v && /tmp/v/bin/python -m pip --version")
    assert out.startswith("Python 3.10."), out
    assert "git version" in out and "python 3.10" in out, out


@pytest.mark.docker
def test_a_python_no_release_ships_fails_before_any_build(docker_client):
    report = ImageBuilder(docker_client, lambda repo: None, registry=None).build(
        [_task_needing(UNSHIPPED, "acme__w-1"), _task_needing(UNSHIPPED, "acme__w-2")])
    base = report.results[0]
    assert base.status is BuildStatus.FAILED and base.name == BaseSpec(UNSHIPPED).name
    assert f"no release ships Python {UNSHIPPED}, needed by acme__w-1, acme__w-2;" in base.error
    assert f"--base-image {UNSHIPPED}=IMAGE" in base.error
    assert all("not built: its parent" in r.error for r in report.results[1:])


@pytest.mark.docker
def test_a_base_is_made_from_a_local_image_given_for_its_python(docker_client, jammy_base):
    """--base-image 3.10=local/py:3.10 with no registry: the base comes from that image, and an
    image whose python3 is another version is refused, naming both."""
    # An image whose python3 is another version: bookworm's base (the bundled suite's, so made already).
    other = BaseSpec("3.11").name
    assert ImageBuilder(docker_client, lambda repo: None, registry=None).make_base(BaseSpec("3.11")).status in (
        BuildStatus.BOOTSTRAPPED, BuildStatus.REUSED)
    original = docker_client.images.get(jammy_base.name)
    original.tag("local/py", "3.10")
    # Take the base's name off the bootstrapped image (it keeps its local/py tag) so it is made again.
    docker_client.images.remove(jammy_base.name)
    try:
        wrong = ImageBuilder(docker_client, lambda repo: None, registry=None, base_images={"3.10": other})
        failed = wrong.make_base(jammy_base)
        assert failed.status is BuildStatus.FAILED
        assert f"python3 in {other} is Python 3.11, not 3.10" in failed.error
        assert not wrong.exists(jammy_base.name)

        given = ImageBuilder(docker_client, lambda repo: None, registry=None, base_images={"3.10": "local/py:3.10"})
        base = given.make_base(jammy_base)
        assert base.status is BuildStatus.GIVEN, base.error
        made = docker_client.images.get(jammy_base.name)
        assert made.id != original.id and made.labels["monkeys.source"] == "image:local/py:3.10"
        out = _run(docker_client, jammy_base.name, "python3 --version && git --version")
        assert out.startswith("Python 3.10.") and "git version" in out, out
    finally:
        # Put the bootstrapped image back under the base's name, as the other tests expect it.
        try:
            made = docker_client.images.get(jammy_base.name)
            if made.id != original.id:
                docker_client.images.remove(jammy_base.name)
                docker_client.images.remove(made.id, force=True)
        except docker.errors.ImageNotFound:
            pass
        repository, _, tag = jammy_base.name.rpartition(":")
        original.tag(repository, tag)
        docker_client.images.remove("local/py:3.10")
