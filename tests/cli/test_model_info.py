"""`konsilium model info` reads the model files' headers: it answers at once and never builds the torch model."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import time

import yaml

from konsilium.engines.model_metadata import describe_local_model

PROBE = """
import json, sys
from typer.testing import CliRunner
from konsilium.cli.main import app
result = CliRunner().invoke(app, ["model", "info", "--json", "--home", sys.argv[1]])
print(json.dumps({"exit": result.exit_code, "stdout": result.stdout,
                  "loaded": [m for m in ("torch", "transformers") if m in sys.modules]}))
"""


def model_info(home) -> dict:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", PROBE, str(home)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return {**json.loads(proc.stdout), "seconds": time.monotonic() - started}


def test_the_embedded_model_is_described_from_its_gguf_header_without_torch(tmp_path):
    probe = model_info(tmp_path / "home")
    assert probe["exit"] == 0, probe["stdout"]
    assert probe["loaded"] == []  # no torch, no transformers: nothing was loaded
    assert probe["seconds"] < 30  # loading the model took minutes
    info = json.loads(probe["stdout"])
    # The values the loaded TransformersEngine reports (tests/engines/test_transformers_engine.py).
    assert info["engine"] == "transformers"
    assert info["gguf_file"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert info["architecture"] == "llama"
    assert info["dtype"] == "float32" and info["device"] == "cpu"
    assert info["parameters"] == 134_515_008
    assert info["context_length"] == 8192
    assert info["batching"] == {"max_batch_size": 16, "max_batch_tokens": 32768, "batch_invariant": False}


def test_a_hf_folder_is_described_from_config_json_and_safetensors_headers(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    config = {"model_type": "qwen3", "dtype": "bfloat16", "max_position_embeddings": 40960}
    (folder / "config.json").write_text(json.dumps(config))
    header = json.dumps(
        {
            "__metadata__": {"format": "pt"},
            "embed.weight": {"dtype": "BF16", "shape": [10, 4], "data_offsets": [0, 80]},
            "norm.weight": {"dtype": "BF16", "shape": [4], "data_offsets": [80, 88]},
        }
    ).encode()
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + bytes(88))
    info = describe_local_model(str(folder), "auto", "cpu")
    assert info["architecture"] == "qwen3" and info["dtype"] == "bfloat16"
    assert info["parameters"] == 44 and info["context_length"] == 40960 and info["gguf_file"] is None


def test_a_damaged_gguf_is_one_clear_line(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + struct.pack("<I", 3) + b"\x01")
    home = tmp_path / "home"
    home.mkdir()
    (home / "konsilium.yaml").write_text(yaml.safe_dump({"engine": {"model": str(bad)}}))
    probe = model_info(home)
    assert probe["exit"] == 1
    message = json.loads(probe["stdout"])
    assert message["error"]["message"] == f"{bad}: truncated GGUF header"
