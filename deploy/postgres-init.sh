#!/bin/sh
# Run once by the postgres image on an empty data directory (docker-entrypoint-initdb.d): the app's
# own role, which owns its database and may create its tables, but is no superuser and cannot create
# roles or databases. The superuser (POSTGRES_USER) is not used by the app.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     -v app_password="$KFPLATFORM_DB_PASSWORD" <<'SQL'
CREATE ROLE kfplatform LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD :'app_password';
CREATE DATABASE kfplatform OWNER kfplatform;
REVOKE ALL ON DATABASE kfplatform FROM PUBLIC;
SQL
