# MLflow's backend store: Debian bookworm's PostgreSQL 15 on the same base as the tunefleet
# image, so the stack builds where Docker Hub cannot be reached (docker/build-offline.sh).
#   docker build -f docker/postgres.Dockerfile -t tunefleet-postgres:15 .
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# A fixed uid (999, as in the official image) so volume ownership is stable across builds.
# No cluster at install time: the entrypoint creates one in the volume on first start.
# hadolint ignore=DL3008
RUN groupadd --system --gid 999 postgres \
    && useradd --system --uid 999 --gid 999 --home-dir /var/lib/postgresql --shell /bin/bash postgres \
    && mkdir -p /etc/postgresql-common/createcluster.d \
    && echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/no-main.conf \
    && apt-get update \
    && apt-get install -y --no-install-recommends postgresql-15 \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /var/lib/postgresql/data /run/postgresql \
    && chown -R postgres:postgres /var/lib/postgresql /run/postgresql

COPY docker/postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh

ENV PGDATA=/var/lib/postgresql/data \
    PATH=/usr/lib/postgresql/15/bin:$PATH
USER 999:999
EXPOSE 5432
# POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB come from the environment at run time.
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint.sh"]
