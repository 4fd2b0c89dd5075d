"""Parameter counts for FLOPs: the real bundled GGUF's header, a GGUF written here byte by byte,
made-up Hugging Face model folders, and what is unknown (with the reason)."""

from __future__ import annotations

import json
import struct

import pytest

from agent.parameters import (ModelFileError, count_parameters, folder_parameters, gguf_parameters, gguf_tensor_shapes,
                              hub_snapshot)
from agent.servers import ServerError, bundled_gguf
from tests.conftest import unavailable


def _str(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


def write_gguf(path, tensors: dict[str, tuple[int, ...]], version: int = 3) -> None:
    """A GGUF header with metadata of every kind a real file has (scalars, strings, arrays of
    strings and of numbers) before the tensor infos, and no weights."""
    kvs = [
        _str("general.architecture") + struct.pack("<I", 8) + _str("gemma3"),
        _str("gemma3.context_length") + struct.pack("<I", 4) + struct.pack("<I", 32768),
        _str("general.flag") + struct.pack("<I", 7) + b"\x01",
        _str("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 3) + _str("<pad>") + _str("a") + _str("bc"),
        _str("tokenizer.ggml.scores") + struct.pack("<IIQ", 9, 6, 3) + struct.pack("<3f", 0.0, -1.0, -2.0),
        _str("nested") + struct.pack("<IIQ", 9, 9, 1) + struct.pack("<IQ", 10, 2) + struct.pack("<2Q", 1, 2),
    ]
    infos = b"".join(_str(name) + struct.pack("<I", len(dims)) + struct.pack(f"<{len(dims)}Q", *dims)
                     + struct.pack("<IQ", 12, 0) for name, dims in tensors.items())
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs)) + b"".join(kvs) + infos)


def write_safetensors(path, shapes: dict[str, list[int]]) -> None:
    header = {name: {"dtype": "BF16", "shape": shape, "data_offsets": [0, 0]} for name, shape in shapes.items()}
    header["__metadata__"] = {"format": "pt"}
    data = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(data)) + data)


def test_the_bundled_gemma_3_270m_has_about_268_million_parameters():
    try:
        gguf = bundled_gguf()
    except ServerError as err:
        unavailable(str(err))
    shapes = gguf_tensor_shapes(gguf.path)
    assert "token_embd.weight" in shapes and len(shapes) > 100
    count = gguf_parameters(gguf.path)
    assert 260e6 < count < 275e6
    assert count == 268_098_176  # the figure the report's old one-entry table held, now read from the file
    assert count_parameters(str(gguf.path)).source == f"GGUF header of {gguf.path.name}"


def test_a_gguf_header_is_read_past_its_metadata_to_every_tensor(tmp_path):
    path = tmp_path / "tiny.gguf"
    write_gguf(path, {"token_embd.weight": (64, 1000), "blk.0.attn_q.weight": (64, 64), "output_norm.weight": (64,)})
    assert gguf_tensor_shapes(path) == {"token_embd.weight": (64, 1000), "blk.0.attn_q.weight": (64, 64),
                                        "output_norm.weight": (64,)}
    assert gguf_parameters(path) == 64_000 + 4096 + 64
    assert count_parameters(str(path)).parameters == 68_160


def test_files_that_are_not_gguf_say_what_is_wrong(tmp_path):
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"this is not a GGUF file")
    with pytest.raises(ModelFileError, match="not a GGUF file"):
        gguf_parameters(bogus)
    old = tmp_path / "v1.gguf"
    write_gguf(old, {"w": (2, 2)}, version=1)
    with pytest.raises(ModelFileError, match="version 1 is not supported"):
        gguf_parameters(old)
    cut = tmp_path / "cut.gguf"
    write_gguf(cut, {"w": (2, 2)})
    cut.write_bytes(cut.read_bytes()[:-20])
    with pytest.raises(ModelFileError, match="truncated"):
        gguf_parameters(cut)
    unknown = count_parameters(str(bogus))
    assert unknown.parameters is None and "not a GGUF file" in unknown.reason


def test_a_model_folder_is_counted_from_its_safetensors_headers(tmp_path):
    folder = tmp_path / "tiny-llama"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"torch_dtype": "bfloat16", "hidden_size": 8}))
    write_safetensors(folder / "model-00001-of-00002.safetensors", {"embed.weight": [100, 8], "norm.weight": [8]})
    write_safetensors(folder / "model-00002-of-00002.safetensors", {"lm_head.weight": [100, 8]})
    counted = count_parameters(str(folder))
    assert counted.parameters == 800 + 8 + 800 and "safetensors headers" in counted.source
    # The same weights shipped twice: the index says which files are the model.
    write_safetensors(folder / "consolidated.safetensors", {"embed.weight": [100, 8], "lm_head.weight": [100, 8]})
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {"total_size": 3216}, "weight_map": {
        "embed.weight": "model-00001-of-00002.safetensors", "norm.weight": "model-00001-of-00002.safetensors",
        "lm_head.weight": "model-00002-of-00002.safetensors"}}))
    assert folder_parameters(folder).parameters == 1608


def test_a_folder_with_only_an_index_uses_total_size_over_the_dtype_unless_quantised(tmp_path):
    folder = tmp_path / "indexed"
    folder.mkdir()
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {"total_size": 3_000},
                                                                     "weight_map": {"w": "model-1.safetensors"}}))
    (folder / "config.json").write_text(json.dumps({"torch_dtype": "bfloat16"}))
    assert folder_parameters(folder).parameters == 1_500
    (folder / "config.json").write_text(json.dumps({"torch_dtype": "bfloat16", "quantization_config": {"bits": 4}}))
    quantised = folder_parameters(folder)
    assert quantised.parameters is None and "quantised" in quantised.reason
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no *.safetensors" in folder_parameters(empty).reason


def test_a_hub_model_id_is_read_from_the_local_cache_or_is_unknown(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    snapshot = tmp_path / "models--acme--tiny" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    write_safetensors(snapshot / "model.safetensors", {"w": [10, 10]})
    assert hub_snapshot("acme/tiny") == snapshot
    assert count_parameters("acme/tiny").parameters == 100
    missing = count_parameters("acme/absent")
    assert missing.parameters is None and "--model-parameters" in missing.reason
    assert missing.as_meta() == {"parameters": None, "source": "", "reason": missing.reason}
