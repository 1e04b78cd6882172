"""A job that kills its worker is redelivered (task_reject_on_worker_lost) and failed on the 4th delivery,
with a message: never redelivered forever, never silently lost."""
from __future__ import annotations

import io
import os
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from PIL import Image

from tasks import store
from tests.conftest import running_process

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
KILL_QUEUE = "gpu.test-worker-lost"   # only this test's prefork worker listens here


@pytest.fixture
def prefork_worker(redis_db, queue_env, tmp_path):
    argv = [str(Path(sys.executable).with_name("dnebot")), "worker", "--pool", "prefork", "--queues", KILL_QUEUE,
            "-n", f"lost-{queue_env['DNEBOT_NAMESPACE']}@%h"]
    with running_process(argv, {**os.environ, **queue_env}, REPO, tmp_path / "prefork.log", b" ready.",
                         "the prefork worker") as proc:
        yield proc


def wait_until_running(redis_db, job_id, delivery, timeout_s=60):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        record = store.get_job(redis_db, job_id)
        if (record["state"], record.get("deliveries")) == ("running", str(delivery)):
            return
        time.sleep(0.1)
    raise AssertionError(f"delivery {delivery} of job {job_id} never ran: {store.get_job(redis_db, job_id)}")


def test_killed_three_times_then_failed(redis_db, queue_env, prefork_worker):
    from tasks.celery_app import TASK_NAMES, app
    from tasks.registry import load_registry
    from tasks.specs import encode_spec
    from tasks.submit import new_job_id

    buf = io.BytesIO()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(buf, format="PNG")
    job_id = new_job_id()
    spec = encode_spec(load_registry(), name="crash", photo_key=store.put_upload(redis_db, job_id, buf.getvalue()),
                       steps=1000)   # long enough to be killed mid-way
    after = store.last_event_id(redis_db)
    store.create_job(redis_db, job_id, "encode", spec.to_dict(), {}, "test:lost")
    app.send_task(TASK_NAMES["encode"], args=[job_id, spec.to_dict()], kwargs={"scope": "test:lost"},
                  task_id=job_id, queue=KILL_QUEUE)
    for delivery in (1, 2, 3):
        wait_until_running(redis_db, job_id, delivery)
        time.sleep(0.5)
        (child,) = psutil.Process(prefork_worker.pid).children()
        child.kill()   # as the OOM killer would
    event = store.wait_for_event(redis_db, job_id, after, 60)
    assert (event.state, event.message) == (
        "failed", f"the worker crashed 3 times on this job (job {job_id}); try a smaller request or tell the "
                  f"server owner")
    assert store.get_job(redis_db, job_id)["deliveries"] == "4"
