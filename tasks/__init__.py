"""The queue: job specs, registry, store, Celery app and task bodies."""


def __getattr__(name):
    # Lets `celery -A tasks worker` find the app, without every `import tasks.x` importing Celery.
    if name in ("app", "celery"):
        from tasks.celery_app import app
        return app
    raise AttributeError(f"module 'tasks' has no attribute {name!r}")
