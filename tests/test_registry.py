"""The pull path, against a real registry on loopback (Debian's docker-registry)."""


import pytest

from harness.image_names import BaseSpec, EnvSpec
from images.build import BuildStatus, ImageBuilder

from conftest import loopback_registry

pytestmark = pytest.mark.docker

# No release in the table ships 3.7, so this base can only come from the registry.
PULL_ONLY_PYTHON = "3.7"


@pytest.fixture
def registry(tmp_path):
    with loopback_registry(tmp_path) as address:
        yield address


def _task_needing(python: str):
    from harness.tasks import parse_row

    return parse_row({
        "instance_id": "pull__test-1", "repo": "monkeys-suite/none", "base_commit": "0" * 40, "patch": "",
        "test_patch": "", "problem_statement": "x", "FAIL_TO_PASS": [], "PASS_TO_PASS": [],
        "env_recipe": {"python": python, "packages": []},
    }, "test", 1)


def test_a_base_is_pulled_from_a_registry_that_answers(docker_client, built_suite, registry):
    # Publish a python:<version>-slim-style image on the loopback registry, as a mirror would.
    source = f"{registry}/python:{PULL_ONLY_PYTHON}-slim"
    docker_client.images.get(BaseSpec("3.11").name).tag(source)
    for event in docker_client.images.push(source, stream=True, decode=True):
        assert "error" not in event, event
    docker_client.images.remove(source)
    base = BaseSpec(PULL_ONLY_PYTHON)
    made = [base.name, EnvSpec(base, ()).name, source]
    try:
        builder = ImageBuilder(docker_client, lambda repo: None, registry=registry)
        report = builder.build([_task_needing(PULL_ONLY_PYTHON)])
        statuses = {r.name: r.status for r in report.results}
        assert statuses[base.name] is BuildStatus.PULLED
        assert docker_client.images.get(base.name).labels["monkeys.source"] == f"pull:{source}"
        assert statuses[EnvSpec(base, ()).name] is BuildStatus.BUILT
    finally:
        for name in made:
            if builder.exists(name):
                docker_client.images.remove(name, force=True)


def test_without_a_registry_a_base_no_release_ships_fails_naming_both_causes(docker_client, registry):
    registry_without_image = registry
    report = ImageBuilder(docker_client, lambda repo: None, registry=registry_without_image).build(
        [_task_needing(PULL_ONLY_PYTHON)])
    base_failure = report.failed[0]
    assert base_failure.name == BaseSpec(PULL_ONLY_PYTHON).name
    assert f"no release ships Python {PULL_ONLY_PYTHON}, needed by pull__test-1" in base_failure.error
    assert f"--base-image {PULL_ONLY_PYTHON}=IMAGE" in base_failure.error
    assert "pulling failed" in base_failure.error and registry in base_failure.error
    assert all("not built: its parent" in r.error for r in report.failed[1:])
