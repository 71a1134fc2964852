# syntax=docker/dockerfile:1
# One image, three entry points: `wafleet operator`, `wafleet api`, `wafleet connector`
# (and `wafleet sim`, `wafleet standalone`). Build: `make image` (IMAGE=wafleet:<version>).
#
# Base: Debian bookworm's slim Python. neonize's Go library needs glibc 2.34+ (bookworm
# has 2.36) and python-magic needs libmagic1 at import time.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: install wafleet and its dependencies into a virtualenv -----------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/wafleet
WORKDIR /src
# Dependencies first (cached while only the code changes): pyproject alone, with stubs
# where the packages go, so that pip resolves and installs every dependency.
COPY pyproject.toml README.md ./
RUN mkdir -p wafleet api/wafleet_api connector/wafleet_connector operator/wafleet_operator \
       app/wafleet_app \
    && touch wafleet/__init__.py api/wafleet_api/__init__.py \
       connector/wafleet_connector/__init__.py operator/wafleet_operator/__init__.py \
       app/wafleet_app/__init__.py \
    && /opt/wafleet/bin/pip install '.[neonize,cluster,firestore]' \
    && /opt/wafleet/bin/pip uninstall --yes wafleet
COPY wafleet ./wafleet
COPY api ./api
COPY connector ./connector
COPY operator ./operator
COPY app ./app
RUN /opt/wafleet/bin/pip install --no-deps '.[neonize,cluster,firestore]' \
    && /opt/wafleet/bin/python -m compileall -q /opt/wafleet/lib

# --- runtime ------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="wafleet" \
      org.opencontainers.image.description="A fleet of linked WhatsApp accounts on Kubernetes" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN apt-get update \
    && apt-get install --yes --no-install-recommends libmagic1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 wafleet \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin wafleet \
    && mkdir -p /data \
    && chown 10001:10001 /data
COPY --from=build /opt/wafleet /opt/wafleet
ENV PATH=/opt/wafleet/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    WAFLEET_HOST=0.0.0.0 \
    WAFLEET_DATA_DIR=/data
# Fail the build, not the pod, when a native library is missing: neonize's Go core loads
# now (glibc) and python-magic finds libmagic; nothing is downloaded at run time.
RUN python -c "import neonize._binder as b, magic, wafleet_connector.engine.inprocess, \
wafleet_operator.handlers, wafleet_api.app; b.load_goneonize(); print('wafleet image ok')"
# The numeric user, so that runAsNonRoot can check it.
USER 10001:10001
WORKDIR /data
EXPOSE 8080 8081 8090
ENTRYPOINT ["wafleet"]
CMD ["--help"]
