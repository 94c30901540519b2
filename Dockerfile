# syntax=docker/dockerfile:1
# Awan's controller image: one process (`awan serve`), non-root, no compilers or caches in the final layer.
#   docker build -t awan:0.1.0 .                       # every cloud
#   docker build --build-arg EXTRAS=aws,coreweave -t awan:0.1.0-aws-cw .
# Run it against PostgreSQL with the clouds in a mounted awan.yaml (docs/deploy.md):
#   docker run -p 8080:8080 -e AWAN_DB_URL=postgresql+psycopg://... -v $PWD/awan.yaml:/etc/awan/awan.yaml:ro awan:0.1.0

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY controlplane ./controlplane
COPY providers ./providers
COPY infra ./infra
COPY mockclouds ./mockclouds
ARG EXTRAS=all
RUN python -m venv /opt/awan \
 && /opt/awan/bin/pip install --no-compile ".[${EXTRAS}]" \
 && find /opt/awan -name '__pycache__' -prune -exec rm -rf {} +

FROM python:3.11-slim
LABEL org.opencontainers.image.title="awan" \
      org.opencontainers.image.description="Places GPU workloads across clouds by policy; provisions them through Pulumi" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 awan \
 && useradd --system --uid 10001 --gid awan --home-dir /var/lib/awan --create-home --shell /usr/sbin/nologin awan
COPY --from=build /opt/awan /opt/awan
COPY policies /etc/awan/policies
ENV PATH=/opt/awan/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    AWAN_HOST=0.0.0.0 \
    AWAN_PORT=8080 \
    AWAN_LOG_FORMAT=json \
    AWAN_CONFIG=/etc/awan/awan.yaml \
    AWAN_POLICIES='["/etc/awan/policies/00-defaults.yaml","/etc/awan/policies/10-residency.yaml","/etc/awan/policies/20-provider-share.yaml","/etc/awan/policies/30-commitments.yaml","/etc/awan/policies/40-rules.yaml"]'
USER 10001:10001
WORKDIR /var/lib/awan
EXPOSE 8080
# /healthz answers while the process serves; Kubernetes uses /readyz (store reachable) for readiness.
HEALTHCHECK --interval=30s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('AWAN_PORT', '8080') + '/healthz', timeout=2)"]
ENTRYPOINT ["awan"]
CMD ["serve"]
