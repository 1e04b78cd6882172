# Two images from one file:
#   docker build --target bot -t dnebot-bot .      # the Discord front end: no torch, ~200 MB
#   docker build --target worker -t dnebot-worker . # a GPU worker: torch with CUDA
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY tasks ./tasks
COPY models ./models

FROM base AS bot
RUN pip install .
USER nobody
CMD ["dnebot", "bot"]

FROM base AS worker
# PyPI's Linux torch wheel is the CUDA build; pin it before the project so pip never picks another.
RUN pip install torch==2.13.0 && pip install '.[worker]'
# The converted-model cache lives on a volume so a restart does not re-parse big pickles.
ENV DNEBOT_CACHE=/cache
VOLUME ["/cache"]
CMD ["dnebot", "worker", "--queues", "gpu.fast,gpu.slow"]
