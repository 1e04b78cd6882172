"""`dnebot worker`: a Celery worker for the GPU queues, the same as
`celery -A tasks.celery_app worker -Q gpu.fast,gpu.slow -P solo -c 1`.

Run one per GPU (CUDA_VISIBLE_DEVICES=N, -n gpuN@%h). solo is the default: CUDA-safe and simplest, but it
can't enforce time limits; prefork -c 1 keeps the hard limits (models still load lazily in the child).
"""
from __future__ import annotations

import argparse

from tasks.celery_app import FAST_QUEUE, SLOW_QUEUE


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dnebot worker", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queues", "-Q", default=f"{FAST_QUEUE},{SLOW_QUEUE}",
                        help="comma-separated queues to take jobs from (default: %(default)s)")
    parser.add_argument("--pool", "-P", choices=("solo", "prefork"), default="solo",
                        help="solo (default; no time limits) or prefork (one child, hard time limits)")
    parser.add_argument("--loglevel", "-l", default="INFO")
    parser.add_argument("--hostname", "-n", default=None, help="worker name, e.g. gpu0@%%h")
    return parser


def celery_argv(args: argparse.Namespace) -> list[str]:
    argv = ["worker", "-Q", args.queues, "-P", args.pool, "-c", "1", "--loglevel", args.loglevel]
    if args.hostname:
        argv += ["-n", args.hostname]
    return argv


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from tasks.celery_app import app
    app.worker_main(celery_argv(args))
    return 0
