# syntax=docker/dockerfile:1.7
# One image for every Harmony component; the command differs:
#   harmony operator | harmony api | harmony worker | harmony db upgrade
#
# CPU (default):
#   docker build -t REGISTRY/harmony:0.1.0 .
# CUDA (GPU training and forecasting), on an NVIDIA CUDA base with torch's CUDA wheels:
#   docker build -t REGISTRY/harmony:0.1.0-cuda \
#     --build-arg VARIANT=cuda \
#     --build-arg TORCH_SOURCE="--index-url https://download.pytorch.org/whl/cu128" .
# Offline, from a folder of wheels mounted into the build (podman/buildah `-v`):
#   --build-arg TORCH_SOURCE="--find-links /wheels"  (a folder holding torch-2.13.0+cpu-*.whl)

# Any Debian bookworm with Python 3.11 on PATH as python3 (and its venv module) will do;
# tests/image builds on one made by debootstrap.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
# The runtime base of the CUDA variant; it must have glibc >= Debian bookworm's (Ubuntu 24.04 does).
ARG CUDA_BASE_IMAGE=nvidia/cuda:12.8.1-base-ubuntu24.04
# cpu or cuda: which runtime stage below becomes the image.
ARG VARIANT=cpu

FROM ${PYTHON_IMAGE} AS python

# ---- runtime-cpu: the Python image with the dependencies' environment in /opt/harmony -----
# The CPU runtime is built on in place, so the image does not copy gigabytes of environment
# from stage to stage. The build stage starts from it by name, so that builders which skip
# stages no FROM or COPY names literally (buildah 1.28, Debian bookworm's podman) still build
# it for `FROM runtime-${VARIANT}` below; with VARIANT=cuda those builders need
# `--skip-unused-stages=false`.
FROM python AS runtime-cpu
# pip's options that say where torch comes from.
ARG TORCH_SOURCE="--index-url https://download.pytorch.org/whl/cpu"
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python3 -m venv /opt/harmony
ENV PATH=/opt/harmony/bin:$PATH
# torch first, from PyTorch's own index (CPU wheels by default, far smaller than PyPI's CUDA
# build); the version is the one pyproject.toml pins, so the project install keeps it.
RUN pip install --upgrade pip setuptools wheel \
 && pip install torch==2.13.0 ${TORCH_SOURCE}
WORKDIR /src
# Dependencies change less often than the code: this layer is reused while only code (or the
# README, which only the wheel's metadata needs) changes.
COPY pyproject.toml ./
RUN python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
      > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

# ---- build: the project's own wheel ------------------------------------------------------
# Apart from the dependencies, so that a code change rebuilds a small layer, not the
# gigabytes of the environment.
FROM runtime-cpu AS build
COPY README.md ./
COPY forecaster ./forecaster
COPY decision ./decision
COPY controller ./controller
COPY api ./api
COPY migrations ./migrations
RUN pip wheel --no-deps --wheel-dir /wheels .

# ---- runtime-cuda: the same environment on a CUDA base ------------------------------------
FROM ${CUDA_BASE_IMAGE} AS runtime-cuda
# The Python of the official image lives in /usr/local; bring it and the libraries it links
# (so this variant needs the official python image as PYTHON_IMAGE).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates libssl3 libffi8 libsqlite3-0 libbz2-1.0 liblzma5 zlib1g libexpat1 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=python /usr/local /usr/local
RUN ldconfig && python3 --version
COPY --from=runtime-cpu /opt/harmony /opt/harmony

FROM runtime-${VARIANT} AS runtime
LABEL org.opencontainers.image.title="harmony" \
      org.opencontainers.image.description="Forecast-driven Bayesian autoscaling for Kubernetes GPU node pools" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/harmony/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HARMONY_DATA_DIR=/var/lib/harmony \
    HARMONY_MODEL_DIR=/var/cache/harmony/models \
    XDG_CACHE_HOME=/tmp/.cache
# A fixed numeric uid/gid, so Kubernetes' runAsNonRoot can verify it without a passwd lookup.
RUN groupadd --system --gid 10001 harmony \
 && useradd --system --uid 10001 --gid 10001 --home-dir /home/harmony --create-home \
      --shell /usr/sbin/nologin harmony \
 && mkdir -p /var/lib/harmony /var/cache/harmony/models \
 && chown -R 10001:10001 /var/lib/harmony /var/cache/harmony
# The project's wheel alone, offline: nothing but the code changes in this layer.
COPY --from=build /wheels /tmp/wheels
RUN pip install --no-deps --no-index --no-cache-dir /tmp/wheels/*.whl \
 && rm -rf /tmp/wheels \
 && harmony --version
USER 10001:10001
WORKDIR /home/harmony
EXPOSE 8000 8080
ENTRYPOINT ["harmony"]
CMD ["--help"]
