# Operator image: kopf + robodm_operator, running as a non-root user. The operator imports
# robodm_engine for the IngestionJob spec (robodm_engine.jobspec), so the engine package is
# installed too, with only the light dependencies that import needs: no Ray, no torch.
# Build from the repository root:
#   docker build -f docker/operator.Dockerfile -t ghcr.io/robodm/robodm-operator:0.1.0 .
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Versions from requirements/lock.txt.
RUN pip install "kopf==1.45.2" "kubernetes==37.0.1" "boto3==1.44.5" "botocore==1.44.5" \
        "pyyaml==6.0.3" "jsonschema==4.26.0" "numpy==2.2.6" "av==15.1.0" "pyarrow==26.0.1"

WORKDIR /opt/robodm
COPY pyproject.toml README.md ./
COPY robodm_engine robodm_engine
COPY operator operator
RUN pip install --no-deps .

# A numeric UID so that Kubernetes can verify runAsNonRoot.
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin robodm
USER 10001:10001

EXPOSE 8080
ENTRYPOINT ["python", "-m", "robodm_operator"]
