# rotator operator image.
#
#   docker build -t rotator:0.1.0 .
#   docker run --rm rotator:0.1.0 --help
#
# Single stage on purpose: every runtime dependency ships manylinux wheels, so no compiler is
# needed and there is nothing to strip. The versions are pinned by constraints.txt, the same file
# the Makefile uses, so the image runs exactly what the test suite ran.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore

# Fixed, unprivileged identity (uid/gid 65532, the conventional "nonroot"); the Deployment's
# securityContext uses the same numbers, so runAsNonRoot can be verified by the kubelet.
RUN groupadd --system --gid 65532 rotator \
 && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin rotator

# Build context: see .dockerignore (an allow-list). README.md is the pyproject `readme`.
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY operator/ operator/
COPY crds/ crds/
# crds/ is copied because the package data (rotator/crds/*.yaml) may point at it.
# Non-editable install into site-packages (bytecode compiled at install time, so nothing is written
# at runtime under readOnlyRootFilesystem), a smoke test of the entry point, then drop the sources.
RUN pip install --no-cache-dir -c constraints.txt . \
 && rotator --help >/dev/null \
 && cd / && rm -rf /src

WORKDIR /
USER 65532:65532
# 8080: Kopf liveness endpoint (/healthz); 9090: Prometheus metrics (/metrics).
EXPOSE 8080 9090
ENTRYPOINT ["rotator", "run"]
# Extra flags (e.g. --namespace shop) are given as container args; none means all namespaces.
CMD []
