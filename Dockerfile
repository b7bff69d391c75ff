# The operator image: `ray-operator` on CPython 3.11, with the `ray` extra so the Ray load
# adapter (issue 7) can read each cluster's GCS. Runs as a non-root user; the root
# filesystem can be mounted read-only (nothing is written at run time).
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY engine engine
COPY driver driver
COPY adapters adapters
COPY sim sim
COPY bench bench
RUN pip wheel --no-cache-dir --wheel-dir /wheels '.[ray]'

FROM python:3.11-slim-bookworm
RUN useradd --uid 1000 --no-create-home --shell /usr/sbin/nologin ray-operator
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels 'ray-operator[ray]' \
    && rm -rf /wheels
USER 1000:1000
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
EXPOSE 8080
ENTRYPOINT ["ray-operator"]
