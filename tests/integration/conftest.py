"""A real Redis (tests/conftest.py's redis_url: DB 15, keys under a namespace unique to this run) and a real
`celery -A tasks.celery_app worker` process, serving a tiny zoo of real generators written here."""
from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import running_process

REPO = Path(__file__).resolve().parents[2]
WORKER_START_TIMEOUT_S = 120

pytestmark = pytest.mark.integration


def build_tiny_zoo(folder: Path) -> Path:
    """human, and anime/fox/pony 'fine-tuned' from it (its weights nudged, noise_const inherited): blendable."""
    import torch

    from models.networks import Generator, GeneratorConfig
    from models.weights import save_generator
    from tests.conftest import write_models_toml

    torch.set_num_threads(1)
    torch.manual_seed(0)
    config = GeneratorConfig(z_dim=16, w_dim=16, img_resolution=16, mapping_layers=2, channel_base=256,
                             channel_max=16)
    human = Generator(config)
    save_generator(human, folder / "human.safetensors", {"name": "human", "fine_tuned_from": None, "ancestor": "human"})
    models = {"human": {"file": "human.safetensors", "family": "demo", "psi": 0.7, "description": "tiny humans"}}
    for i, name in enumerate(("anime", "fox", "pony"), start=1):
        child = Generator(config)
        child.load_state_dict(human.state_dict())
        with torch.no_grad():
            for pname, p in child.named_parameters():
                if not pname.endswith("noise_const"):
                    p.add_(0.1 * i * torch.randn_like(p))
        save_generator(child, folder / f"{name}.safetensors",
                       {"name": name, "fine_tuned_from": "human", "ancestor": "human"})
        models[name] = {"file": f"{name}.safetensors", "family": "demo", "psi": 0.7, "description": f"tiny {name}"}
    return write_models_toml(folder, models, {"demo": "human"}, "anime")


@pytest.fixture(scope="session")
def tiny_zoo(tmp_path_factory) -> Path:
    return build_tiny_zoo(tmp_path_factory.mktemp("zoo"))


@pytest.fixture(scope="session")
def queue_env(tiny_zoo, redis_url):
    """Environment for this process and the worker: DB 15, a namespace of our own, the tiny zoo."""
    namespace = f"dnebot-test-{uuid.uuid4().hex[:8]}"
    env = {"DNEBOT_REDIS_URL": redis_url, "DNEBOT_NAMESPACE": namespace, "DNEBOT_MODELS": str(tiny_zoo),
           "OMP_NUM_THREADS": "1", "DNEBOT_DEVICE": "cpu"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    from tasks.celery_app import use_redis
    use_redis(redis_url)
    yield env
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def redis_db(queue_env):
    import redis

    client = redis.Redis.from_url(queue_env["DNEBOT_REDIS_URL"])
    yield client
    keys = list(client.scan_iter(match=f"{queue_env['DNEBOT_NAMESPACE']}:*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture(scope="session")
def celery_worker_process(redis_db, queue_env, tmp_path_factory):
    """`celery -A tasks.celery_app worker` as its own process, solo pool, both queues."""
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    celery = Path(sys.executable).with_name("celery")
    argv = [str(celery), "-A", "tasks.celery_app", "worker", "-Q", "gpu.fast,gpu.slow", "-P", "solo", "-c", "1",
            "--loglevel", "INFO", "-n", f"{queue_env['DNEBOT_NAMESPACE']}@%h", "--without-mingle", "--without-gossip"]
    try:
        with running_process(argv, {**os.environ, **queue_env}, REPO, log, b" ready.", "the Celery worker",
                             WORKER_START_TIMEOUT_S) as proc:
            yield proc
    finally:
        if os.environ.get("DNEBOT_SHOW_WORKER_LOG"):
            print(log.read_text())
