"""Pulling official instance images: a real engine, a real registry on loopback (Debian's
docker-registry), and a loopback proxy in front of it that plays Docker Hub's rate limit."""

from __future__ import annotations

import http.client
import http.server
import io
import json
import os
import random
import re
import tarfile
import threading
import time
import uuid

import docker.errors
import pytest

from images.pull import PullReporter, PullStatus, classify, pull_images

from conftest import loopback_registry

UID = uuid.uuid4().hex[:10]
OFFICIAL = f"swebench/sweb.eval.x86_64.monkeys-pulltest_1776_{UID}:latest"
ABSENT = f"swebench/sweb.eval.x86_64.monkeys-pulltest_1776_{UID}-absent:latest"
LAYER_BYTES = 3_000_000  # random, so no layer of it is already here and every pull downloads it


# ---------------------------------------------------------------------------------------------
# The engine's own words (as observed from Docker 20.10; see images/pull.py), classified.


@pytest.mark.parametrize("message, kind", [
    ("toomanyrequests: You have reached your pull rate limit. You may increase the limit by "
     "authenticating and upgrading: https://www.docker.com/increase-rate-limit", "rate limited"),
    ('error parsing HTTP 429 response body: invalid character \'s\' looking for beginning of value: "slow down"',
     "rate limited"),
    ("manifest for 127.0.0.1:5000/swebench/x:latest not found: manifest unknown: manifest unknown", "missing"),
    ("pull access denied for swebench/x, repository does not exist or may require 'docker login': "
     "denied: requested access to the resource is denied", "missing"),
    ("received unexpected HTTP status: 503 Service Unavailable", "transient"),
    ("Get https://registry-1.docker.io/v2/: net/http: TLS handshake timeout", "transient"),
    ("read tcp 10.0.0.2:4242->1.2.3.4:443: read: connection reset by peer", "transient"),
    ("invalid reference format", "other"),
])
def test_engine_messages_are_classified(message, kind):
    assert classify(message).value == kind


# ---------------------------------------------------------------------------------------------
# Fixtures: a registry, a proxy in front of it, an image published on it.


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    with loopback_registry(tmp_path_factory.mktemp("pull-registry")) as address:
        yield address


_MANIFEST = re.compile(r"^/v2/.+/manifests/[^/]+$")
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
               "transfer-encoding", "upgrade", "host"}
RATE_LIMIT_BODY = json.dumps(
    {"errors": [{"code": "TOOMANYREQUESTS", "message": "You have reached your pull rate limit."}]}).encode()


class RateLimitingProxy:
    """Forwards GET/HEAD to the registry, answering 429 to the manifest requests of the first
    ``refuse`` pulls (or ``answer``, say a 503). A pull is counted at its `GET /v2/` ping: the engine sends one per pull and then
    asks for the manifest twice (HEAD, then GET when the HEAD fails), so counting manifest requests
    would count engine internals rather than pulls."""

    def __init__(self, upstream: str):
        self.upstream, self.refuse, self.pulls = upstream, 0, 0
        self.answer = (429, "Too Many Requests", RATE_LIMIT_BODY)  # what a refused pull hears
        self.requests: list[tuple[str, str, int]] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                proxy.handle(self)

            do_HEAD = do_GET

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def handle(self, request: http.server.BaseHTTPRequestHandler) -> None:
        path = request.path.split("?")[0]
        with self.lock:
            if path == "/v2/":
                self.pulls += 1
            limited = bool(_MANIFEST.match(path)) and self.pulls <= self.refuse
        if limited:
            status, reason, body = self.answer
            self._log(request, status)
            request.send_response(status, reason)
            request.send_header("Content-Type", "application/json")
            request.send_header("Content-Length", str(len(body)))
            request.end_headers()
            if request.command != "HEAD":
                request.wfile.write(body)
            return
        upstream = http.client.HTTPConnection(self.upstream, timeout=60)
        try:
            headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
            upstream.request(request.command, request.path, headers=headers)
            response = upstream.getresponse()
            self._log(request, response.status)
            request.send_response(response.status, response.reason)
            sized = False
            for key, value in response.getheaders():
                if key.lower() not in _HOP_BY_HOP:
                    request.send_header(key, value)
                    sized = sized or key.lower() == "content-length"
            if not sized and request.command != "HEAD":
                request.send_header("Connection", "close")
                request.close_connection = True
            request.end_headers()
            if request.command != "HEAD":
                while chunk := response.read(1 << 16):
                    request.wfile.write(chunk)
        finally:
            upstream.close()

    def _log(self, request, status: int) -> None:
        with self.lock:
            self.requests.append((request.command, request.path, status))

    def refused(self) -> list[tuple[str, str, int]]:
        with self.lock:
            return [r for r in self.requests if r[2] == self.answer[0]]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy(registry):
    proxy = RateLimitingProxy(registry)
    yield proxy
    proxy.close()


def _remove(client, name: str) -> None:
    try:
        client.images.remove(name, force=True)
    except docker.errors.ImageNotFound:
        pass


def _exists(client, name: str) -> bool:
    try:
        client.images.get(name)
        return True
    except docker.errors.ImageNotFound:
        return False


@pytest.fixture(scope="module")
def published(docker_client, registry):
    """OFFICIAL, on the registry only: one random layer, imported, pushed, and untagged here."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = os.urandom(LAYER_BYTES)
        info = tarfile.TarInfo("monkeys-pulltest.bin")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    source = f"{registry}/{OFFICIAL}"
    repository, _, tag = source.rpartition(":")
    try:
        docker_client.api.import_image_from_data(buffer.getvalue(), repository=repository, tag=tag)
        for event in docker_client.images.push(repository, tag=tag, stream=True, decode=True):
            assert "error" not in event, event
    finally:
        _remove(docker_client, source)
    yield OFFICIAL


@pytest.fixture
def clean(docker_client, registry):
    """Whatever a test pulls goes again, under every name it could have."""
    names = [OFFICIAL, ABSENT, f"{registry}/{OFFICIAL}"]
    yield names
    for name in names:
        _remove(docker_client, name)


class Recorder(PullReporter):
    def __init__(self):
        self.events: list[tuple] = []
        self.lock = threading.Lock()

    def _add(self, *event):
        with self.lock:
            self.events.append(event)

    def start(self, name, kind):
        self._add("start", name)

    def line(self, name, text):
        self._add("line", name, text)

    def progress(self, name, done, total):
        self._add("progress", name, done, total)

    def done(self, result):
        self._add("done", result.name, result.status)


class NoJitter(random.Random):
    """Draws the top of every back-off range, so the waits show the exponential caps themselves."""

    def uniform(self, a, b):
        return b


# ---------------------------------------------------------------------------------------------
# The pulls.


@pytest.mark.docker
def test_an_image_is_pulled_from_a_registry_and_kept_under_its_official_name(docker_client, published, registry, proxy, clean):
    clean.append(f"{proxy.address}/{OFFICIAL}")
    assert not _exists(docker_client, OFFICIAL)
    reporter, sleeps = Recorder(), []
    [result] = pull_images(docker_client, [OFFICIAL], registry=registry, reporter=reporter, sleep=sleeps.append)

    assert result.status is PullStatus.PULLED, result.error
    assert (result.attempts, result.error, sleeps) == (1, "", [])
    assert result.bytes >= LAYER_BYTES
    assert _exists(docker_client, OFFICIAL)
    assert not _exists(docker_client, f"{registry}/{OFFICIAL}"), "the prefixed tag must go"
    progress = [e for e in reporter.events if e[0] == "progress"]
    assert progress and all(0 <= done <= total for _, _, done, total in progress)
    assert progress[-1][2] == progress[-1][3] == result.bytes
    assert reporter.events[0] == ("start", OFFICIAL) and reporter.events[-1] == ("done", OFFICIAL, PullStatus.PULLED)

    # Again, through the proxy: the image is here, so the registry hears nothing.
    started = time.monotonic()
    [again] = pull_images(docker_client, [OFFICIAL], registry=proxy.address, sleep=sleeps.append)
    assert again.status is PullStatus.PRESENT
    assert (again.attempts, again.bytes, again.error) == (0, 0, "")
    assert proxy.requests == []
    assert time.monotonic() - started < 5


@pytest.mark.docker
def test_a_name_the_registry_lacks_is_missing_at_once_and_the_others_go_on(docker_client, published, registry, clean):
    sleeps: list[float] = []
    results = pull_images(docker_client, [ABSENT, OFFICIAL, ABSENT], registry=registry, sleep=sleeps.append)

    assert [r.name for r in results] == [ABSENT, OFFICIAL, ABSENT]
    missing, pulled = results[0], results[1]
    assert missing.status is PullStatus.MISSING
    assert missing.attempts == 1 and sleeps == []
    assert ABSENT in missing.error and registry in missing.error and "manifest unknown" in missing.error
    assert not _exists(docker_client, ABSENT)
    assert pulled.status is PullStatus.PULLED, pulled.error


@pytest.mark.docker
def test_a_rate_limited_pull_backs_off_and_gets_through(docker_client, published, proxy, clean):
    clean.append(f"{proxy.address}/{OFFICIAL}")
    proxy.refuse = 2
    reporter, sleeps = Recorder(), []
    [result] = pull_images(docker_client, [OFFICIAL], registry=proxy.address, reporter=reporter,
                           retries=4, backoff=0.5, sleep=sleeps.append, rng=NoJitter())

    assert result.status is PullStatus.PULLED, result.error
    assert result.attempts == 3
    assert sleeps == [0.5, 1.0]
    assert proxy.refused(), "the proxy never answered 429"
    assert _exists(docker_client, OFFICIAL)
    assert not _exists(docker_client, f"{proxy.address}/{OFFICIAL}")
    retried = [e[2] for e in reporter.events if e[0] == "line" and "retrying" in e[2]]
    assert len(retried) == 2 and "toomanyrequests" in retried[0]


@pytest.mark.docker
def test_a_pull_still_rate_limited_after_every_try_says_to_wait_or_log_in(docker_client, published, proxy, clean):
    clean.append(f"{proxy.address}/{OFFICIAL}")
    proxy.refuse = 100
    sleeps: list[float] = []
    [result] = pull_images(docker_client, [OFFICIAL], registry=proxy.address, retries=5, backoff=1.0,
                           max_backoff=3.0, sleep=sleeps.append, rng=NoJitter())

    assert result.status is PullStatus.RATE_LIMITED
    assert result.attempts == 5 and proxy.pulls == 5
    assert sleeps == [1.0, 2.0, 3.0, 3.0], "exponential, capped at max_backoff"
    assert OFFICIAL in result.error and "toomanyrequests" in result.error
    assert "wait" in result.error.lower() and "docker login" in result.error
    assert not _exists(docker_client, OFFICIAL)

    # Full jitter: each wait is drawn from [0, its cap].
    jittered: list[float] = []
    [again] = pull_images(docker_client, [OFFICIAL], registry=proxy.address, retries=4, backoff=1.0,
                          sleep=jittered.append, rng=random.Random(1776))
    assert again.status is PullStatus.RATE_LIMITED and again.attempts == 4
    assert len(jittered) == 3 and all(0 <= wait <= cap for wait, cap in zip(jittered, [1.0, 2.0, 4.0]))
    assert jittered != [1.0, 2.0, 4.0]


@pytest.mark.docker
def test_a_registry_that_is_briefly_unavailable_is_retried(docker_client, published, proxy, clean):
    clean.append(f"{proxy.address}/{OFFICIAL}")
    proxy.refuse, proxy.answer = 1, (503, "Service Unavailable", b"")
    sleeps: list[float] = []
    [result] = pull_images(docker_client, [OFFICIAL], registry=proxy.address, sleep=sleeps.append, rng=NoJitter())

    assert result.status is PullStatus.PULLED, result.error
    assert result.attempts == 2 and sleeps == [2.0] and proxy.refused()
