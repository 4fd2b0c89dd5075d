"""A tiny package index on a free port, for tests of resolving packages "as of" a date.

pip's ``--uploaded-prior-to`` (pip >= 26.0, or ``PIP_UPLOADED_PRIOR_TO``) only filters files whose
index says when they were uploaded: the PEP 691 JSON simple API with PEP 700 ``upload-time``. A file
without one is refused outright under that option, so a plain directory of wheels cannot stand in.
This index serves one project, ``monkeys-probe``, in two releases uploaded years apart:

  1.0  uploaded 2020-01-01T00:00:00Z
  2.0  uploaded 2023-01-01T00:00:00Z

It answers PEP 691 JSON (``Accept: application/vnd.pypi.simple.v1+json``, as pip >= 22.2 asks) and
PEP 503 HTML (what older pips in the task images ask for) at ``/simple/`` and
``/simple/monkeys-probe/``, and the wheels under ``/files/``. It listens on 0.0.0.0, so containers
and ``docker build`` steps reach it through the bridge gateway (:func:`docker_gateway`).

The wheels are real: written by hand as zip files with METADATA, WHEEL and RECORD, py3-none-any,
Requires-Python >=3.5, so every env from Python 3.5 to 3.13 can install them. Their bytes are
reproducible (fixed zip timestamps), so their sha256 is the same on every run.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import ipaddress
import json
import socket
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PROJECT = "monkeys-probe"
"""The project's name on the index (PEP 503 normalized)."""
MODULE = "monkeys_probe"
"""The importable module; ``monkeys_probe.VERSION`` is the release's version string."""
REQUIRES_PYTHON = ">=3.5"

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPE = "application/vnd.pypi.simple.v1+html"
API_VERSION = "1.1"  # 1.1 is the PEP 700 version: upload-time per file, versions per project


@dataclass(frozen=True)
class Release:
    """One release of the probe as the index lists it."""

    version: str
    uploaded: str
    """PEP 700 ``upload-time``: ISO 8601 in UTC with a trailing Z."""


RELEASES = (Release("1.0", "2020-01-01T00:00:00Z"), Release("2.0", "2023-01-01T00:00:00Z"))


@dataclass(frozen=True)
class Wheel:
    """A built wheel of the probe, with what the index says about it."""

    release: Release
    path: Path
    sha256: str

    @property
    def filename(self) -> str:
        return self.path.name


def _record_hash(data: bytes) -> str:
    # RECORD wants urlsafe base64 without padding (the wheel spec), not hex.
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(directory: Path, release: Release) -> Wheel:
    """Write ``monkeys_probe-<version>-py3-none-any.whl`` into ``directory`` and return it."""
    dist_info = f"{MODULE}-{release.version}.dist-info"
    files = {
        f"{MODULE}/__init__.py": f'VERSION = "{release.version}"\n',
        f"{dist_info}/METADATA": (
            # 2.1, not newer: the pips of old Python 3.5 envs must read it.
            "Metadata-Version: 2.1\n"
            f"Name: {PROJECT}\n"
            f"Version: {release.version}\n"
            "Summary: A probe package served by the monkeys tests' local index\n"
            f"Requires-Python: {REQUIRES_PYTHON}\n"
        ),
        f"{dist_info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: monkeys-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = "".join(f"{name},{_record_hash(text.encode())},{len(text.encode())}\n" for name, text in files.items())
    files[f"{dist_info}/RECORD"] = record + f"{dist_info}/RECORD,,\n"
    path = Path(directory) / f"{MODULE}-{release.version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():  # RECORD last, as installers expect
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, text, zipfile.ZIP_DEFLATED)
    return Wheel(release, path, hashlib.sha256(path.read_bytes()).hexdigest())


def _preferred_type(accept: str) -> str:
    """The response type for an Accept header: PEP 691 content negotiation by q-value, HTML by default."""
    offered = {JSON_TYPE: 0.0, HTML_TYPE: 0.0, "text/html": 0.0}
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                with contextlib.suppress(ValueError):
                    quality = float(value)
        if media in offered:
            offered[media] = max(offered[media], quality)
        elif media in ("*/*", "text/*"):
            offered["text/html"] = max(offered["text/html"], quality)
    best = max(offered, key=lambda media: offered[media])
    return best if offered[best] > 0 else "text/html"


def project_json(wheels: list[Wheel]) -> dict:
    """The PEP 691/700 JSON page of the probe project."""
    return {
        "meta": {"api-version": API_VERSION},
        "name": PROJECT,
        "versions": [w.release.version for w in wheels],
        "files": [
            {
                "filename": w.filename,
                # Path-absolute: resolved against whatever host the client used (loopback or gateway).
                "url": f"/files/{w.filename}",
                "hashes": {"sha256": w.sha256},
                "requires-python": REQUIRES_PYTHON,
                "upload-time": w.release.uploaded,
                "size": w.path.stat().st_size,
            }
            for w in wheels
        ],
    }


def project_html(wheels: list[Wheel]) -> str:
    """The PEP 503 HTML page of the probe project (no upload times: HTML cannot carry them)."""
    links = "".join(
        f'<a href="/files/{w.filename}#sha256={w.sha256}" data-requires-python="{html.escape(REQUIRES_PYTHON)}">'
        f"{w.filename}</a><br>\n"
        for w in wheels
    )
    return f"<!DOCTYPE html>\n<html><body>\n<h1>Links for {PROJECT}</h1>\n{links}</body></html>\n"


@dataclass(frozen=True)
class Request:
    """One request the index answered, so a test can tell who reached it and how."""

    client: str
    path: str
    content_type: str
    status: int


@dataclass
class PackageIndex:
    """A running index (see :func:`serve_index`)."""

    port: int
    wheels: list[Wheel]
    requests: list[Request] = field(default_factory=list)
    """Every request answered, in arrival order (appended from the server's threads)."""

    def url(self, host: str = "127.0.0.1") -> str:
        """The ``--index-url`` for clients that reach this host as ``host``."""
        return f"http://{host}:{self.port}/simple"


def _handler(index: PackageIndex, lock: threading.Lock) -> type[BaseHTTPRequestHandler]:
    by_name = {w.filename: w for w in index.wheels}

    class Handler(BaseHTTPRequestHandler):
        timeout = 30  # a client that stalls mid-request cannot hold a thread (and the shutdown) forever

        def log_message(self, *args) -> None:
            pass

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if content_type != "application/octet-stream":
                self.send_header("Vary", "Accept")  # same URL, JSON or HTML by Accept (PEP 691)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            with lock:
                index.requests.append(Request(self.client_address[0], self.path, content_type, status))

        def _page(self, as_json: dict, as_html: str) -> None:
            chosen = _preferred_type(self.headers.get("Accept", ""))
            if chosen == JSON_TYPE:
                self._send(200, JSON_TYPE, json.dumps(as_json).encode())
            else:
                self._send(200, f"{chosen}; charset=utf-8", as_html.encode())

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0].split("#", 1)[0]
            if path in ("/simple", f"/simple/{PROJECT}"):
                self.send_response(301)
                self.send_header("Location", path + "/")
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif path == "/simple/":
                self._page({"meta": {"api-version": API_VERSION}, "projects": [{"name": PROJECT}]},
                           f'<!DOCTYPE html>\n<html><body>\n<a href="{PROJECT}/">{PROJECT}</a>\n</body></html>\n')
            elif path == f"/simple/{PROJECT}/":
                self._page(project_json(index.wheels), project_html(index.wheels))
            elif path.startswith("/files/") and path.removeprefix("/files/") in by_name:
                self._send(200, "application/octet-stream", by_name[path.removeprefix("/files/")].path.read_bytes())
            else:
                self._send(404, "text/plain", f"not on this index: {path}\n".encode())

        do_HEAD = do_GET

    return Handler


@contextlib.contextmanager
def serve_index(directory: Path | None = None, *, host: str = "0.0.0.0", port: int = 0) -> Iterator[PackageIndex]:
    """Build the probe's wheels into ``directory`` (a fresh temporary one if None) and serve them.

    Listens on ``host`` (all interfaces by default, so containers reach it through the bridge
    gateway) on ``port`` (0: a free one). On leaving the block the server is shut down and its
    threads joined, so none is left running; a temporary directory is removed.
    """
    with contextlib.ExitStack() as stack:
        if directory is None:
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="monkeys-index-")))
        wheels = [build_wheel(directory, release) for release in RELEASES]
        lock = threading.Lock()
        index = PackageIndex(port=0, wheels=wheels)
        server = ThreadingHTTPServer((host, port), _handler(index, lock))
        # Request threads are joined by server_close (block_on_close), not abandoned as daemons.
        server.daemon_threads = False
        index.port = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, name=f"package-index-{index.port}")
        thread.start()
        try:
            yield index
        finally:
            server.shutdown()
            server.server_close()
            thread.join()


def docker_gateway(client) -> str:
    """The address of this host on Docker's default bridge network (often 172.17.0.1).

    Containers and ``docker build`` steps on the default bridge reach a server on this host there.
    ``client`` is a ``docker.DockerClient``.
    """
    network = client.networks.get("bridge")
    configs = (network.attrs.get("IPAM") or {}).get("Config") or []
    for config in configs:
        if config.get("Gateway"):
            return config["Gateway"].split("/", 1)[0]
    # Docker 28 leaves the default bridge's gateway out of IPAM.Config. Unless told otherwise the
    # engine gives the bridge the first address of its subnet; taken only where this host holds it.
    for config in configs:
        subnet = ipaddress.ip_network(config.get("Subnet") or "0.0.0.0/32")
        first = next(subnet.hosts(), None) if subnet.version == 4 else None
        if first is not None and _held_here(str(first)):
            return str(first)
    raise RuntimeError(
        "Docker's bridge network names no gateway address (docker network inspect bridge: IPAM.Config), "
        f"and this host holds no first address of its subnets ({[c.get('Subnet') for c in configs]}); "
        "containers cannot reach a server on this host that way"
    )


def _held_here(address: str) -> bool:
    """Whether ``address`` is one of this host's own (a socket can be bound to it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((address, 0))
        except OSError:
            return False
    return True
