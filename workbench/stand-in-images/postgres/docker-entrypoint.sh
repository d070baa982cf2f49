#!/usr/bin/env bash
# The postgres stand-in's entrypoint, written from the official image's documented behaviour:
#   POSTGRES_PASSWORD (required), POSTGRES_USER (default postgres), POSTGRES_DB (default the
#   user), POSTGRES_INITDB_ARGS, POSTGRES_HOST_AUTH_METHOD (default scram-sha-256), PGDATA.
# On a first start (PGDATA holds no cluster) it runs initdb, then a temporary server that
# listens on the Unix socket only, creates POSTGRES_DB and runs /docker-entrypoint-initdb.d's
# *.sql, *.sql.gz and *.sh in name order, and stops it. Then it execs the server, as the
# postgres user, listening on every address. Later starts skip all of that.
set -Eeuo pipefail

# `docker run image -c option=value` means `postgres -c option=value`.
if [ "${1:0:1}" = '-' ]; then
  set -- postgres "$@"
fi

if [ "$1" = postgres ] && [ "$(id -u)" = 0 ]; then
  # As root: make the data and socket directories the postgres user's, then run as it.
  mkdir -p "$PGDATA" /var/run/postgresql
  chmod 00700 "$PGDATA"
  find "$PGDATA" \! -user postgres -exec chown postgres:postgres '{}' +
  chown postgres:postgres /var/run/postgresql
  chmod 03775 /var/run/postgresql
  exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
fi

if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "${POSTGRES_USER:=postgres}"
  : "${POSTGRES_DB:=$POSTGRES_USER}"
  : "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
  if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
    echo "error: the database is uninitialized and POSTGRES_PASSWORD is not set" >&2
    echo "       (set POSTGRES_PASSWORD, or POSTGRES_HOST_AUTH_METHOD=trust to allow anyone in)" >&2
    exit 1
  fi

  # initdb's default rules: trust on the local socket (and on loopback); the password file
  # sets the superuser's password for the rule added below.
  mkdir -p "$PGDATA"; chmod 00700 "$PGDATA"
  # shellcheck disable=SC2086
  initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "${POSTGRES_PASSWORD:-}") \
    -D "$PGDATA" ${POSTGRES_INITDB_ARGS:-}
  # Every other address: password authentication (SCRAM), as the official image appends.
  printf '\nhost all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD" >>"$PGDATA/pg_hba.conf"

  # A temporary server on the Unix socket only, so nobody connects over TCP before the init
  # scripts have run (compose's healthcheck probes TCP for that reason).
  pg_ctl -D "$PGDATA" -w -o "-c listen_addresses='' -p 5432" start

  psql_init=(psql -v ON_ERROR_STOP=1 --no-password --no-psqlrc --username "$POSTGRES_USER")
  if [ "$POSTGRES_DB" != postgres ]; then
    "${psql_init[@]}" --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db" ;'
  fi
  for f in /docker-entrypoint-initdb.d/*; do
    [ -e "$f" ] || continue
    case "$f" in
      *.sh)
        if [ -x "$f" ]; then echo "$0: running $f"; "$f"
        else echo "$0: sourcing $f"; # shellcheck disable=SC1090
          . "$f"; fi ;;
      *.sql) echo "$0: running $f"; "${psql_init[@]}" --dbname "$POSTGRES_DB" -f "$f" ;;
      *.sql.gz) echo "$0: running $f"; gunzip -c "$f" | "${psql_init[@]}" --dbname "$POSTGRES_DB" ;;
      *) echo "$0: ignoring $f" ;;
    esac
  done

  pg_ctl -D "$PGDATA" -m fast -w stop
  echo
  echo "PostgreSQL init process complete; ready for start up."
  echo
fi

exec "$@"
