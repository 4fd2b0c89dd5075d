"""Pulling the official prebuilt SWE-bench instance images ahead of a run (`monkeys images pull`).

Every name gets a result and nothing raises, so a run can go on without the images that could not
be had. An image already here under its official name is never pulled over. A ``registry`` (a
mirror, or a registry on loopback) is put in front of the name for the pull, and the image is then
re-tagged under the plain official name, so every later command finds it there.

Docker Hub's pull rate limit (HTTP 429) and transient registry failures (5xx, connection resets,
timeouts) are retried with capped exponential back-off with full jitter; a name the registry does
not have fails at once.

What the engine says (Docker 20.10, checked against a loopback registry behind a proxy):
  429 with Docker's JSON error body   "toomanyrequests: You have reached your pull rate limit."
  429 with a body that is not JSON    "error parsing HTTP 429 response body: invalid character ..."
  503 / 502                           "received unexpected HTTP status: 503 Service Unavailable"
  no such manifest                    "manifest for R:latest not found: manifest unknown: manifest unknown"
  (Docker Hub, no such repository)    "pull access denied for R, repository does not exist or may require 'docker login'"
The daemon answers those as an HTTP error on /images/create (500, or 404 for not-found) before the
stream starts; an error during the layer downloads comes as an ``error`` event in the stream.
"""

from __future__ import annotations

import enum
import random
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import docker
import docker.errors
import requests

from images.build import ImageKind, Reporter, image_exists


class PullStatus(str, enum.Enum):
    PRESENT = "present"  # already here under the official name; not pulled
    PULLED = "pulled"
    MISSING = "missing"  # the registry does not have it
    RATE_LIMITED = "rate_limited"  # still refused after every try
    FAILED = "failed"


@dataclass
class PullResult:
    name: str
    status: PullStatus
    seconds: float = 0.0
    bytes: int = 0  # downloaded by the attempt that succeeded (layers already here count nothing)
    attempts: int = 0  # pulls started; 0 when the image was already here
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status in (PullStatus.PRESENT, PullStatus.PULLED)


class PullReporter(Reporter):
    """An `images.build.Reporter` that also hears each image's download progress, summed over its
    layers. ``total`` grows as the engine starts on more layers (it learns a layer's size when the
    layer starts downloading). A plain `Reporter` works too: it just gets no ``progress`` calls."""

    def progress(self, name: str, done: int, total: int) -> None: ...


_RATE_LIMITED = re.compile(r"toomanyrequests|too many requests|rate.?limit|\b429\b", re.I)
_MISSING = re.compile(
    r"manifest unknown|not found|repository does not exist|pull access denied|name unknown", re.I)
_TRANSIENT = re.compile(
    r"\b50[0234]\b|internal server error|bad gateway|service unavailable|gateway time-?out"
    r"|connection reset|connection aborted|broken pipe|unexpected eof|\beof\b|timeout|timed out"
    r"|deadline exceeded|temporary failure",
    re.I,
)


class _Kind(enum.Enum):
    RATE_LIMITED = "rate limited"
    MISSING = "missing"
    TRANSIENT = "transient"
    OTHER = "other"


def classify(message: str) -> _Kind:
    """What an engine error message means for a pull: retry it, give up on the name, or fail."""
    if _RATE_LIMITED.search(message):
        return _Kind.RATE_LIMITED
    if _MISSING.search(message):
        return _Kind.MISSING
    if _TRANSIENT.search(message):
        return _Kind.TRANSIENT
    return _Kind.OTHER


class _PullError(Exception):
    """An ``error`` event in the engine's pull stream."""


def pull_images(
    client: docker.DockerClient,
    names: Sequence[str],
    *,
    registry: str | None = None,
    reporter: Reporter | None = None,
    retries: int = 6,
    backoff: float = 2.0,
    max_backoff: float = 120.0,
    workers: int = 2,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> list[PullResult]:
    """Pull every image in ``names`` that is not here yet; one result per name, in order.

    ``retries`` is the most tries a name gets (at least one). Between tries the wait is drawn
    uniformly from [0, min(max_backoff, backoff * 2**(try-1))] ("full jitter"); ``sleep`` does the
    waiting and ``rng`` draws it (both injectable so tests need not wait)."""
    puller = _Puller(client, _registry_prefix(registry), reporter or Reporter(), max(1, retries), backoff,
                     max_backoff, sleep, rng or random.Random())
    unique = list(dict.fromkeys(names))
    with ThreadPoolExecutor(max(1, workers)) as pool:
        done = dict(zip(unique, pool.map(puller.one, unique)))
    return [done[name] for name in names]


def _registry_prefix(registry: str | None) -> str:
    if not registry:
        return ""
    return re.sub(r"^[a-z]+://", "", registry.strip()).rstrip("/")


def _split(ref: str) -> tuple[str, str]:
    """repository and tag (or digest) of an image reference; a registry's :port is not a tag."""
    if "@" in ref:
        repository, _, digest = ref.partition("@")
        return repository, digest
    head, _, last = ref.rpartition("/")
    if ":" in last:
        last, _, tag = last.partition(":")
        return f"{head}/{last}" if head else last, tag
    return ref, "latest"


def _canonical(ref: str) -> str:
    repository, tag = _split(ref)
    for prefix in ("docker.io/", "index.docker.io/", "registry-1.docker.io/"):
        if repository.startswith(prefix):
            repository = repository[len(prefix):]
    if repository.startswith("library/"):
        repository = repository[len("library/"):]
    return f"{repository}:{tag}"


def _message(err: BaseException) -> str:
    if isinstance(err, docker.errors.APIError):
        # str(APIError) carries the daemon's own status ("500 Server Error for http+docker://...");
        # the explanation is the registry's story.
        text = err.explanation or str(err)
        text = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    else:
        text = str(err) or type(err).__name__
    return " ".join(text.split())[:600]


class _Progress:
    """Bytes downloaded over bytes to download, summed over one image's layers."""

    def __init__(self) -> None:
        self.layers: dict[str, list[int]] = {}  # layer id -> [current, total]
        self.status: dict[str, str] = {}

    def update(self, event: dict) -> bool:
        layer, status = event.get("id"), event.get("status", "")
        detail = event.get("progressDetail") or {}
        if not layer or status.startswith("Pulling from"):
            return False
        before = self.figure()
        if status == "Downloading" and detail.get("total"):
            self.layers[layer] = [int(detail.get("current", 0)), int(detail["total"])]
        elif status == "Extracting" and detail.get("total") and layer not in self.layers:
            # A small layer can come down without a single "Downloading" event.
            self.layers[layer] = [int(detail["total"])] * 2
        elif status in ("Verifying Checksum", "Download complete", "Extracting", "Pull complete"):
            if layer in self.layers:
                self.layers[layer][0] = self.layers[layer][1]
        return self.figure() != before

    def figure(self) -> tuple[int, int]:
        return sum(c for c, _ in self.layers.values()), sum(t for _, t in self.layers.values())

    def changed_status(self, event: dict) -> str | None:
        layer, status = event.get("id"), event.get("status", "")
        if not status:
            return None
        if not layer:
            return status
        if self.status.get(layer) == status:
            return None
        self.status[layer] = status
        return f"{layer}: {status}"


class _Puller:
    def __init__(self, client, registry: str, reporter: Reporter, tries: int, backoff: float,
                 max_backoff: float, sleep: Callable[[float], None], rng: random.Random):
        self.client, self.registry, self.reporter = client, registry, reporter
        self.tries, self.backoff, self.max_backoff = tries, backoff, max_backoff
        self.sleep, self.rng = sleep, rng
        self._rng_lock = threading.Lock()

    def one(self, name: str) -> PullResult:
        started = time.monotonic()
        try:
            result = self._one(name, started)
        except Exception as err:  # never raise: every name gets a result
            result = PullResult(name, PullStatus.FAILED, time.monotonic() - started, error=f"{name}: {_message(err)}")
        try:
            self.reporter.done(result)
        except Exception:
            pass
        return result

    def _one(self, name: str, started: float) -> PullResult:
        if self._exists(name):
            return PullResult(name, PullStatus.PRESENT)
        source = f"{self.registry}/{name}" if self.registry else name
        where = self.registry or "the default registry (Docker Hub)"
        self.reporter.start(name, ImageKind.INSTANCE)
        attempts = 0
        while True:
            attempts += 1
            progress = _Progress()
            try:
                self._stream(name, source, progress)
                if not self._exists(source):
                    raise _PullError(f"the engine finished pulling {source} but no image appeared")
                self._retag(source, name)
                done, _ = progress.figure()
                return PullResult(name, PullStatus.PULLED, time.monotonic() - started, done, attempts)
            except (docker.errors.DockerException, requests.exceptions.RequestException, _PullError) as err:
                message = _message(err)
            kind = classify(message)
            elapsed = time.monotonic() - started
            if kind is _Kind.MISSING:
                error = f"{name}: not found at {where} (pulled as {source}): {message}"
                return PullResult(name, PullStatus.MISSING, elapsed, attempts=attempts, error=error)
            if kind in (_Kind.RATE_LIMITED, _Kind.TRANSIENT) and attempts < self.tries:
                delay = self._delay(attempts)
                self.reporter.line(name, f"try {attempts}/{self.tries} failed ({kind.value}: {message}); "
                                         f"retrying in {delay:.1f}s")
                self.sleep(delay)
                continue
            if kind is _Kind.RATE_LIMITED:
                error = (f"{name}: {where} is rate-limiting pulls ({message}); gave up after {attempts} tries. "
                         "Wait a while and pull again, or log in (`docker login`): authenticated pulls get a "
                         "higher limit.")
                return PullResult(name, PullStatus.RATE_LIMITED, elapsed, attempts=attempts, error=error)
            return PullResult(name, PullStatus.FAILED, elapsed, attempts=attempts,
                              error=f"{name}: pulling {source} failed after {attempts} tries: {message}"
                              if attempts > 1 else f"{name}: pulling {source} failed: {message}")

    def _delay(self, attempt: int) -> float:
        cap = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        with self._rng_lock:
            return self.rng.uniform(0, cap)

    def _stream(self, name: str, source: str, progress: _Progress) -> None:
        repository, tag = _split(source)
        progress_hook = getattr(self.reporter, "progress", None)
        for event in self.client.api.pull(repository, tag=tag, stream=True, decode=True):
            if "error" in event or "errorDetail" in event:
                detail = event.get("errorDetail") or {}
                raise _PullError(event.get("error") or detail.get("message") or str(event))
            if progress.update(event) and progress_hook is not None:
                progress_hook(name, *progress.figure())
            text = progress.changed_status(event)
            if text:
                self.reporter.line(name, text)

    def _retag(self, source: str, name: str) -> None:
        if _canonical(source) == _canonical(name):
            return
        repository, tag = _split(name)
        self.client.api.tag(source, repository, tag)
        # Only the prefixed tag goes: the image stays under the official name.
        self.client.api.remove_image(source)

    def _exists(self, name: str) -> bool:
        return image_exists(self.client, name)
