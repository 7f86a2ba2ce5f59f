# The engine image: `robodm-engine` as entrypoint. The operator runs it as the engine Job and
# as every node of the job's RayCluster (Ray workers import robodm_engine to run its tasks).
# Build from the repository root:  docker build -f docker/engine.Dockerfile -t robodm-engine .
# Not built on the development machines (no Docker engine there); tests/e2e/kind builds it.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    RAY_USAGE_STATS_ENABLED=0 HOME=/home/robodm
RUN useradd --uid 10001 --create-home --home-dir /home/robodm robodm

WORKDIR /opt/robodm
COPY requirements/lock.txt requirements/lock.txt
RUN pip install uv && uv pip install --system --no-cache -r requirements/lock.txt
COPY pyproject.toml README.md ./
COPY robodm_engine robodm_engine
COPY operator operator
RUN uv pip install --system --no-cache --no-deps .

USER 10001
WORKDIR /home/robodm
ENTRYPOINT ["robodm-engine"]
CMD ["--help"]
