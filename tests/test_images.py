"""Images built from nothing, named by their recipe, laid out like the official ones."""

import dataclasses
import subprocess

import pytest

from harness.containers import ContainerRuntime
from harness.image_names import BaseSpec, EnvSpec, InstanceSpec, docker_safe, image_name, instance_spec, official_image
from images.build import BuildStatus, ImageBuilder
from harness.suite import materialize

pytestmark = pytest.mark.docker


def test_names_follow_the_recipe():
    env = EnvSpec(BaseSpec("3.11"), ("pytest==8.3.4",))
    spec = InstanceSpec("acme__w-1", "acme/w", "a" * 40, env)
    assert spec.name == InstanceSpec("acme__w-1", "acme/w", "a" * 40, EnvSpec(BaseSpec("3.11"), ("pytest==8.3.4",))).name
    other_env = EnvSpec(BaseSpec("3.11"), ("pytest==8.3.5",))
    assert other_env.name != env.name
    assert dataclasses.replace(spec, env=other_env).name != spec.name
    assert dataclasses.replace(spec, commit="b" * 40).name != spec.name
    assert dataclasses.replace(spec, install="pip install -e .").name != spec.name
    assert EnvSpec(BaseSpec("3.13"), env.packages).name != env.name
    assert spec.name.startswith("monkeys/task.acme_1776_w-1:")
    assert docker_safe("Django__Django-11099") == "django_1776_django-11099"
    assert official_image("django__django-11099") == "swebench/sweb.eval.x86_64.django_1776_django-11099:latest"


def test_every_bundled_image_is_built_and_a_second_build_reuses_all(docker_client, bundled_tasks, built_suite):
    assert all(r.status is not BuildStatus.FAILED for r in built_suite.results)
    again = ImageBuilder(docker_client, materialize, registry=None).build(bundled_tasks)
    assert {r.status for r in again.results} == {BuildStatus.REUSED}
    assert {r.name for r in again.results} >= {image_name(t) for t in bundled_tasks}


def test_an_instance_image_holds_the_repo_at_base_commit_and_nothing_later(docker_client, bundled_tasks, built_suite):
    task = bundled_tasks[0]
    host_repo = materialize(task.repo)
    history = subprocess.run(["git", "-C", str(host_repo), "rev-list", "--count", task.base_commit],
                             capture_output=True, text=True, check=True).stdout.strip()
    script = (
        "set -u; source /opt/miniconda3/bin/activate && conda activate testbed\n"
        "cd /testbed && git rev-parse HEAD && git rev-list --all --count && git status --porcelain | wc -l\n"
        "python -c 'import sys; print(sys.prefix, sys.version_info[:2])'; pytest --version\n"
    )
    result = ContainerRuntime(docker_client, run="test-layout").run_script(image_name(task), script)
    head, count, dirty, prefix, version = result.output.splitlines()
    assert result.exit_code == 0, result.output
    assert (head, count, dirty) == (task.base_commit, history, "0")
    assert prefix.startswith("/opt/miniconda3/envs/testbed (3, 11)") and version == "pytest 8.3.4"


def test_a_changed_recipe_builds_a_new_image_beside_the_old(docker_client, bundled_tasks, built_suite):
    task = bundled_tasks[0]
    spec = dataclasses.replace(instance_spec(task), install="echo installed > /testbed/.installed")
    changed = dataclasses.replace(task, env_recipe=dataclasses.replace(task.env_recipe, install=spec.install))
    assert image_name(changed) == spec.name != image_name(task)
    try:
        report = ImageBuilder(docker_client, materialize, registry=None).build([changed])
        statuses = {r.name: r.status for r in report.results}
        assert statuses[spec.name] is BuildStatus.BUILT
        assert statuses[instance_spec(task).env.name] is BuildStatus.REUSED
    finally:
        docker_client.images.remove(spec.name, force=True)


def test_a_failed_build_names_the_image_the_step_and_the_cause(docker_client, bundled_tasks, built_suite):
    task = bundled_tasks[0]
    broken = dataclasses.replace(task, env_recipe=dataclasses.replace(task.env_recipe, install="false && echo never"))
    report = ImageBuilder(docker_client, materialize, registry=None).build([broken])
    (failure,) = report.failed
    assert failure.name == image_name(broken)
    assert f"building {failure.name} (for {task.instance_id}) failed at step 'RUN bash /tmp/monkeys-instance/instance-setup.sh" in failure.error
    assert "# false && echo never'" in failure.error  # the step names the install command
    assert "non-zero code: 1" in failure.error


def test_a_task_whose_repo_lacks_its_commit_is_named(docker_client, bundled_tasks, built_suite):
    task = dataclasses.replace(bundled_tasks[0], base_commit="f" * 40, instance_id="monkeys-suite__ghost-1")
    report = ImageBuilder(docker_client, materialize, registry=None).build([task])
    (failure,) = report.failed
    assert "monkeys-suite__ghost-1" in failure.error and "find base_commit" in failure.error
