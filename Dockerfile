# syntax=docker/dockerfile:1
# One image for everything that runs in a cluster: `enclavectl` (the operator and the services
# its charts start: `enclavectl operator run`, `enclavectl service ...`), the service charts
# (package data), a helm binary built from its Go module, as the dev tooling builds it, and the
# operator's helm server (tools/helm-server).
#
#   docker build -t enclave-operator:0.1.0 .
#   helm install enclave ./charts/enclave-operator -n enclave-system --create-namespace \
#     --set image.repository=<registry>/enclave-operator
#
# Versions: helm's comes from src/enclave_operator/devcluster/versions.env (the one the tests
# run); Go must satisfy helm's go.mod (1.26 for helm v4.3), Python the package (>= 3.11).
#
# Where no Docker engine and no registry can be reached, `enclavectl dev-cluster up` builds this
# same recipe for its real node (src/enclave_operator/devcluster/image.py): Debian bookworm's
# python3 3.11 from mmdebstrap instead of python:3.11-slim-bookworm, the package and its
# dependencies installed with pip into /usr/local/lib/python3.11/dist-packages, the helm and
# helm-server the dev tooling built, uid 65532, HOME=/tmp, `enclavectl operator run`; imported
# into containerd as enclave-operator:0.1.0.

ARG GO_IMAGE=golang:1.26-bookworm
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- helm, statically linked, from helm.sh/helm/v4 at the pinned version ---
FROM ${GO_IMAGE} AS helm
COPY src/enclave_operator/devcluster/versions.env /versions.env
RUN . /versions.env \
 && CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOBIN=/out \
    go install -trimpath \
      -ldflags="-s -w -X helm.sh/helm/v4/internal/version.version=${HELM_VERSION}" \
      "helm.sh/helm/v4/cmd/helm@${HELM_VERSION}" \
 && /out/helm version --short
# The operator's helm server: helm's library at the same version (tools/helm-server/go.mod).
COPY tools/helm-server /helm-server
RUN cd /helm-server && CGO_ENABLED=0 GOFLAGS=-buildvcs=false \
    go build -trimpath -ldflags="-s -w" -o /out/helm-server .

# --- the Python package as a wheel (charts included as package data) ---
FROM ${PYTHON_IMAGE} AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
 && pip wheel --no-cache-dir --wheel-dir /wheels /wheels/enclave_operator-*.whl

# --- runtime: no compilers, no build files, a non-root user ---
FROM ${PYTHON_IMAGE}
RUN --mount=type=bind,from=wheel,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels enclave-operator \
 && useradd --uid 65532 --user-group --no-create-home --home-dir /tmp enclave
COPY --from=helm /out/helm /out/helm-server /usr/local/bin/
# helm keeps its cache and config under HOME; the chart mounts an emptyDir at /tmp and makes
# the root filesystem read-only.
ENV HOME=/tmp PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 65532:65532
RUN enclavectl version && helm version --short
CMD ["enclavectl", "operator", "run"]
