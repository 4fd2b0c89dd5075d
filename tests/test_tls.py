"""The host's CA bundle in containers on the network: pure rules first, then a real engine."""

from __future__ import annotations

import hashlib
import io
import secrets

import docker.errors
import pytest

from harness.containers import ContainerRuntime
from harness.image_names import image_name
from harness.tls import CA_VARIABLES, CONTAINER_CA_PATH, ca_environment, host_ca_bundle, image_env

ACTIVATE = "source /opt/miniconda3/bin/activate && conda activate testbed"
SHOW = "for v in PIP_CERT SSL_CERT_FILE REQUESTS_CA_BUNDLE; do echo \"$v=${!v:-}\"; done; " \
       "if [ -n \"${PIP_CERT:-}\" ]; then sha256sum < \"$PIP_CERT\" | cut -d' ' -f1; fi"


def shown(output: str) -> tuple[dict[str, str], str]:
    """(the three variables as the command saw them, the sha256 of the file PIP_CERT names, or "")."""
    lines = output.splitlines()
    variables = dict(line.partition("=")[::2] for line in lines[:3])
    return variables, (lines[3] if len(lines) > 3 else "")


def test_an_image_without_a_bundle_gets_every_variable():
    assert ca_environment({}) == {var: CONTAINER_CA_PATH for var in CA_VARIABLES}
    assert ca_environment({"PIP_CERT": ""}) == {var: CONTAINER_CA_PATH for var in CA_VARIABLES}


def test_an_image_with_its_own_pip_cert_gets_nothing():
    assert ca_environment({"PIP_CERT": "/opt/miniconda3/ssl/ca.pem"}) == {}


def test_a_bundle_the_image_names_for_requests_is_kept():
    assert ca_environment({"REQUESTS_CA_BUNDLE": "/etc/own.pem"}) == {"PIP_CERT": CONTAINER_CA_PATH,
                                                                      "SSL_CERT_FILE": CONTAINER_CA_PATH}


def test_image_env_reads_docker_config_lists():
    assert image_env(["PATH=/bin:/usr/bin", "PIP_CERT=", "A=b=c"]) == {"PATH": "/bin:/usr/bin", "PIP_CERT": "", "A": "b=c"}
    assert image_env(None) == {}


@pytest.fixture
def uncertified_image(docker_client, built_suite, bundled_tasks):
    """A bundled task's image with the CA settings monkeys' env makes (variables, pip.conf) cleared,
    as in an official image."""
    tag = f"monkeys-test/no-ca:{secrets.token_hex(4)}"
    dockerfile = (f"FROM {image_name(bundled_tasks[0])}\nENV PIP_CERT= SSL_CERT_FILE=\n"
                  "RUN rm -f /opt/miniconda3/envs/testbed/pip.conf\n")
    docker_client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True, network_mode="none")
    yield tag
    try:
        docker_client.images.remove(tag, force=True)
    except docker.errors.ImageNotFound:
        pass


@pytest.mark.docker
def test_a_container_on_the_network_gets_the_host_bundle_where_its_image_has_none(docker_client, uncertified_image):
    host = host_ca_bundle()
    assert host is not None, "this host has no CA bundle to carry"
    digest = hashlib.sha256(host.read_bytes()).hexdigest()
    runtime = ContainerRuntime(docker_client, run="test-tls")
    with runtime.open(uncertified_image, network=True) as box:
        variables, seen = shown(box.exec(SHOW, timeout=30).output)
        assert variables == {var: CONTAINER_CA_PATH for var in CA_VARIABLES}
        assert seen == digest
        # The official eval scripts' activation leaves them as they are.
        activated = box.exec(f"{ACTIVATE} && {SHOW}", timeout=30)
        assert shown(activated.output) == (variables, digest), activated.output
        # pip reaches the index, through a TLS-intercepting proxy too where the host is behind one.
        fetched = box.exec(f"{ACTIVATE} && python -m pip download --no-deps -q -d /tmp/fetched setuptools", timeout=300)
        assert fetched.exit_code == 0, fetched.output
        # What runs once the container has left the network runs as the image alone has it.
        box.disconnect_network()
        assert shown(box.exec(SHOW, timeout=30).output) == ({var: "" for var in CA_VARIABLES}, "")
    with runtime.open(uncertified_image) as box:
        assert shown(box.exec(SHOW, timeout=30).output) == ({var: "" for var in CA_VARIABLES}, "")
        assert box.exec(f"test -e {CONTAINER_CA_PATH}", timeout=30).exit_code == 1


@pytest.mark.docker
def test_a_monkeys_image_keeps_its_own_bundle_on_the_network(docker_client, built_suite, bundled_tasks):
    image = image_name(bundled_tasks[0])
    own = image_env(docker_client.images.get(image).attrs["Config"]["Env"])["PIP_CERT"]
    assert own == "/opt/miniconda3/ssl/ca.pem"
    with ContainerRuntime(docker_client, run="test-tls").open(image, network=True) as box:
        variables, _ = shown(box.exec(SHOW, timeout=30).output)
        assert variables["PIP_CERT"] == own and variables["SSL_CERT_FILE"] == own
        assert variables["REQUESTS_CA_BUNDLE"] == ""
        assert box.exec(f"test -e {CONTAINER_CA_PATH}", timeout=30).exit_code == 1
