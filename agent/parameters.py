"""How many parameters a local model has, read from its files, so a report can state FLOPs
(about 2 x parameters x tokens) for every model monkeys serves itself.

Two sources, both exact counts rather than estimates from an architecture's name or config:

- a GGUF file (llama.cpp): its header lists every tensor with its dimensions; the parameters are
  the sum over tensors of the product of their dimensions. Only the header is read, never the
  weights, so a file of many GB costs a few MB of reading.
- a Hugging Face model folder (vLLM): each ``*.safetensors`` file starts with a JSON header giving
  every tensor's shape. Where the shards are absent, ``model.safetensors.index.json``'s
  ``metadata.total_size`` (bytes) divided by the size of ``config.json``'s ``torch_dtype`` gives the
  count, but only for an unquantised model, whose tensors all share that dtype.

Anything else gives no count, with the reason; a report then shows FLOPs as unknown.
"""

from __future__ import annotations

import json
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

GGUF_MAGIC = b"GGUF"

# GGUF metadata value types (ggml's gguf.h: enum gguf_type).
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9

# Bytes per parameter of the plain (unquantised) dtypes config.json names.
_DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8}


class ModelFileError(ValueError):
    """A model file that cannot be read as what it claims to be; the message names the file."""


@dataclass(frozen=True)
class ParameterCount:
    """A model's parameter count and where it came from, or why it is unknown."""

    parameters: int | None
    source: str = ""
    """How it was counted (``GGUF header of X``, ``safetensors headers in DIR``, ``--model-parameters``)."""
    reason: str = ""
    """Why it is unknown, when ``parameters`` is None."""

    def as_meta(self) -> dict:
        """The JSON a run records (meta key ``model_parameters``)."""
        return {"parameters": self.parameters, "source": self.source, "reason": self.reason}


def _read(f: BinaryIO, n: int, path: Path) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise ModelFileError(f"{path}: truncated GGUF header (wanted {n} more bytes at offset {f.tell() - len(data)})")
    return data


def _unpack(f: BinaryIO, fmt: str, path: Path):
    return struct.unpack(fmt, _read(f, struct.calcsize(fmt), path))[0]


def _length(f: BinaryIO, path: Path) -> int:
    n = _unpack(f, "<Q", path)
    if n > 1 << 30:
        raise ModelFileError(f"{path}: a GGUF string of {n} bytes at offset {f.tell() - 8}; the header is damaged")
    return n


def _skip_string(f: BinaryIO, path: Path) -> None:
    f.seek(_length(f, path), os.SEEK_CUR)


def _string(f: BinaryIO, path: Path) -> str:
    return _read(f, _length(f, path), path).decode("utf-8", errors="replace")


def _skip_value(f: BinaryIO, kind: int, path: Path) -> None:
    if kind in _SCALARS:
        f.seek(struct.calcsize(_SCALARS[kind]), os.SEEK_CUR)
    elif kind == _STRING:
        _skip_string(f, path)
    elif kind == _ARRAY:
        item, count = _unpack(f, "<I", path), _unpack(f, "<Q", path)
        if count > 1 << 32:
            raise ModelFileError(f"{path}: a GGUF array of {count} items; the header is damaged")
        if item in _SCALARS:
            # Fixed-size items (a vocabulary's scores, token types): one seek, not a loop.
            f.seek(count * struct.calcsize(_SCALARS[item]), os.SEEK_CUR)
        else:
            for _ in range(count):
                _skip_value(f, item, path)
    else:
        raise ModelFileError(f"{path}: unknown GGUF metadata value type {kind} at offset {f.tell() - 4}")


def _value(f: BinaryIO, kind: int, path: Path):
    """One metadata value: a number, bool or string; an array is skipped and reads as None."""
    if kind in _SCALARS:
        return _unpack(f, _SCALARS[kind], path)
    if kind == _STRING:
        return _string(f, path)
    _skip_value(f, kind, path)
    return None


def _open_gguf(f: BinaryIO, path: Path) -> tuple[int, int]:
    """Checks the magic and version; returns (tensor count, metadata count)."""
    magic = f.read(4)
    if magic != GGUF_MAGIC:
        raise ModelFileError(f"{path}: not a GGUF file (starts with {magic!r}, not {GGUF_MAGIC!r})")
    version = _unpack(f, "<I", path)
    if version not in (2, 3):
        # Version 1 used 32-bit counts; a big-endian file reads its version byte-swapped.
        raise ModelFileError(f"{path}: GGUF version {version} is not supported (2 and 3 are)")
    return _unpack(f, "<Q", path), _unpack(f, "<Q", path)


def gguf_metadata(path: Path) -> dict[str, int | float | bool | str]:
    """A GGUF file's scalar and string metadata (``general.architecture``, ``gemma3.context_length``,
    ...); arrays (the vocabulary) are skipped, so only the first few MB of the file are read."""
    path = Path(path)
    with path.open("rb", buffering=1 << 20) as f:
        _, kvs = _open_gguf(f, path)
        found = {}
        for _ in range(kvs):
            key = _string(f, path)
            value = _value(f, _unpack(f, "<I", path), path)
            if value is not None:
                found[key] = value
        return found


def gguf_context_length(path: Path) -> int | None:
    """The context the model was trained for: ``<general.architecture>.context_length`` in a GGUF's
    header, or None when the header does not say."""
    meta = gguf_metadata(path)
    value = meta.get(f"{meta.get('general.architecture', '')}.context_length")
    return int(value) if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def gguf_tensor_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Every tensor's name and dimensions from a GGUF file's header (format versions 2 and 3:
    magic, version, tensor count, metadata count, the metadata key/values, then per tensor its
    name, number of dimensions, dimensions, type and offset)."""
    path = Path(path)
    with path.open("rb", buffering=1 << 20) as f:
        tensors, kvs = _open_gguf(f, path)
        for _ in range(kvs):
            _skip_string(f, path)
            _skip_value(f, _unpack(f, "<I", path), path)
        shapes = {}
        for _ in range(tensors):
            name = _string(f, path)
            n_dims = _unpack(f, "<I", path)
            if n_dims > 8:
                raise ModelFileError(f"{path}: tensor {name!r} claims {n_dims} dimensions; the header is damaged")
            dims = struct.unpack(f"<{n_dims}Q", _read(f, 8 * n_dims, path))
            f.seek(4 + 8, os.SEEK_CUR)  # ggml type and data offset: not needed to count
            shapes[name] = dims
        return shapes


def gguf_parameters(path: Path) -> int:
    """Parameters of a GGUF model: the sum over its tensors of the product of their dimensions."""
    return sum(math.prod(dims) for dims in gguf_tensor_shapes(path).values())


def safetensors_parameters(path: Path) -> int:
    """Parameters in one ``.safetensors`` file, from its header (8-byte little-endian length, then
    JSON mapping each tensor to its dtype, shape and offsets)."""
    path = Path(path)
    with path.open("rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise ModelFileError(f"{path}: too short for a safetensors file")
        size = struct.unpack("<Q", head)[0]
        if size > 100 << 20:
            raise ModelFileError(f"{path}: safetensors header of {size} bytes; the file is damaged")
        try:
            header = json.loads(f.read(size))
        except ValueError as err:
            raise ModelFileError(f"{path}: unreadable safetensors header: {err}") from err
    return sum(math.prod(t["shape"]) for name, t in header.items() if name != "__metadata__")


def _weight_files(folder: Path, index: dict | None) -> list[Path]:
    """The safetensors files holding the model once: those its index lists, else ``model*.safetensors``,
    else any. Some repositories ship the same weights twice (``consolidated.safetensors`` beside the
    shards), which counting every file would double."""
    if index and isinstance(index.get("weight_map"), dict):
        listed = [folder / name for name in sorted(set(index["weight_map"].values()))]
        return listed if all(p.is_file() for p in listed) else []
    return sorted(folder.glob("model*.safetensors")) or sorted(folder.glob("*.safetensors"))


def folder_parameters(folder: Path) -> ParameterCount:
    """Parameters of a Hugging Face model folder: from its safetensors shards' headers, else from
    its index's total size over ``config.json``'s dtype for an unquantised model."""
    folder = Path(folder)
    index_path, config_path = folder / "model.safetensors.index.json", folder / "config.json"
    try:
        index = json.loads(index_path.read_text()) if index_path.is_file() else None
        config = json.loads(config_path.read_text()) if config_path.is_file() else {}
    except (OSError, ValueError) as err:
        return ParameterCount(None, reason=f"{folder}: unreadable index or config.json ({err})")
    shards = _weight_files(folder, index)
    if shards:
        return ParameterCount(sum(safetensors_parameters(s) for s in shards),
                              f"safetensors headers in {folder} ({len(shards)} file{'s' if len(shards) > 1 else ''})")
    if index is None:
        return ParameterCount(None, reason=f"{folder} holds no *.safetensors file and no model.safetensors.index.json")
    try:
        total = int(index["metadata"]["total_size"])
    except (KeyError, TypeError, ValueError) as err:
        return ParameterCount(None, reason=f"{index_path}: no readable metadata.total_size ({err!r})")
    dtype = config.get("torch_dtype") or config.get("dtype")
    if config.get("quantization_config"):
        # Packed integer weights with scales: bytes say nothing exact about parameters.
        return ParameterCount(None, reason=f"{config_path}: a quantised model; its shards' headers are needed")
    if dtype not in _DTYPE_BYTES:
        return ParameterCount(None, reason=f"{config_path}: torch_dtype {dtype!r} does not say bytes per parameter")
    return ParameterCount(total // _DTYPE_BYTES[dtype], f"{index_path.name} total_size / {dtype} in {folder}")


def hub_snapshot(name: str, hub_cache: Path | None = None) -> Path | None:
    """The newest local snapshot folder of a Hugging Face model id (``org/name``), if downloaded."""
    base = hub_cache or Path(os.environ.get("HF_HUB_CACHE") or
                             Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface") / "hub")
    snapshots = base / f"models--{name.replace('/', '--')}" / "snapshots"
    if not snapshots.is_dir():
        return None
    found = sorted((p for p in snapshots.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def count_parameters(model: str) -> ParameterCount:
    """Parameters of what a managed server serves: a GGUF path, a model folder, or a Hugging Face
    model id already in the local hub cache. Never raises for a model it cannot read: the count is
    then unknown, with the reason."""
    path = Path(model)
    try:
        if path.is_file():
            return ParameterCount(gguf_parameters(path), f"GGUF header of {path.name}")
        if path.is_dir():
            return folder_parameters(path)
        snapshot = hub_snapshot(model) if "/" in model and not model.startswith(("/", ".")) else None
        if snapshot is not None:
            return folder_parameters(snapshot)
    except (OSError, ModelFileError) as err:
        return ParameterCount(None, reason=str(err))
    return ParameterCount(None, reason=f"{model!r} is not a GGUF file, a model folder, or a model in the local "
                                       f"Hugging Face cache (--model-parameters states the count)")
