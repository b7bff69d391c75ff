# The operator image: `ray-operator` on CPython 3.11 in a virtualenv, with the `ray` extra so
# the Ray load adapter can read each cluster's GCS. Runs as a non-root user (uid 1000) and
# works with a read-only root filesystem: nothing is written at run time, no .pyc either.
#
# Build with `scripts/build-image` (it fills .image/wheels first, the engine compiled with
# mypyc unless `--engine pure`), or by hand:
#   pip wheel --wheel-dir .image/wheels '.[ray]'
#   docker build -t ray-operator:dev .
# RUN steps need no network: every wheel comes from .image/wheels. BASE can be any Debian or
# Ubuntu image with python3 (3.11) and its venv module; CI uses a debootstrap-built bookworm.
ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS build
ARG EXTRAS=ray
COPY .image/wheels /wheels
RUN python3 -m venv /opt/ray-operator \
    && /opt/ray-operator/bin/pip install --no-cache-dir --no-index --find-links /wheels \
       "ray-operator[${EXTRAS}]" \
    && /opt/ray-operator/bin/ray-operator --help > /dev/null

FROM ${BASE}
COPY --from=build /opt/ray-operator /opt/ray-operator
USER 1000:1000
ENV PATH=/opt/ray-operator/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/tmp \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
EXPOSE 8080
ENTRYPOINT ["ray-operator"]
