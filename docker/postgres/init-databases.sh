#!/bin/bash
# Runs once, when the postgres container starts with an empty data volume
# (/docker-entrypoint-initdb.d). One server, two owners:
#   jml       owns database `jml` (the app; it runs its own migrations at start).
#   temporal  owns `temporal` and `temporal_visibility` (temporalio/auto-setup applies the
#             schemas). auto-setup assumes a database named like its user already exists
#             (DBNAME == POSTGRES_USER), so both are created here; CREATEDB keeps its own
#             idempotent "create database" step harmless. btree_gin, which the visibility
#             schema needs, is created here by the superuser so that step needs no privilege.
# Passwords come from the container environment (see docker-compose.yml).
set -euo pipefail

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v jml_password="${JML_DB_PASSWORD:-jml}" \
  -v temporal_password="${TEMPORAL_DB_PASSWORD:-temporal}" <<'EOSQL'
CREATE ROLE jml LOGIN PASSWORD :'jml_password';
CREATE DATABASE jml OWNER jml;

CREATE ROLE temporal LOGIN CREATEDB PASSWORD :'temporal_password';
CREATE DATABASE temporal OWNER temporal;
CREATE DATABASE temporal_visibility OWNER temporal;
\connect temporal_visibility
CREATE EXTENSION IF NOT EXISTS btree_gin;
EOSQL
