#!/usr/bin/env bash
# Starts or stops the private PostgreSQL 15 cluster the tests use.
#   pg_cluster.sh start DIR   initdb (as postgres when run as root), start on a free port,
#                             create the app role, write DIR/env for the tests
#   pg_cluster.sh stop DIR    stop it and remove DIR
#   pg_cluster.sh ctl DIR ARGS...  pg_ctl ARGS on that cluster (as postgres), for fault tests:
#                             e.g. `ctl DIR stop -m immediate`, `ctl DIR start`, `ctl DIR restart -m fast`
# Options for start (environment): PG_MAX_CONNECTIONS (default 300), PG_LOG_CONNECTIONS
# (on|off, default off: "connection received" lines in DIR's server log, to count attempts),
# PG_WAL_LEVEL (default logical: tenants can be moved off this cluster), PG_TLS (on: TLS with a
# certificate for 127.0.0.1 signed by a CA made here; its file is TEST_PG_CA_FILE in DIR/env).
# Roles: the app role (LOGIN CREATEDB) and a mover role (LOGIN SUPERUSER with a password: what
# MOVE_DATABASE_USERNAME names in tests of tenant moves).
set -euo pipefail
cmd=${1:?start|stop}
dir=${2:?directory}
bin=${PG_BIN:-/usr/lib/postgresql/15/bin}
app_user=tenantd_app
app_password=tenantd_test_pw
mover_user=tenantd_mover
mover_password=tenantd_mover_pw

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

case "$cmd" in
start)
  "$0" stop "$dir"
  mkdir -p "$dir"
  # Data and socket live under /tmp: the postgres user must reach them whatever the
  # permissions of the build tree, and socket paths must stay short.
  base=$(mktemp -d /tmp/tenantd-pg-XXXXXX)
  chmod 755 "$base"
  mkdir -p "$base/sock"
  if [ "$(id -u)" = 0 ]; then chown -R postgres:postgres "$base"; fi
  superuser=$(if [ "$(id -u)" = 0 ]; then echo postgres; else id -un; fi)
  as_pg "$bin/initdb" -D "$base/data" -U "$superuser" --auth-local=trust --auth-host=scram-sha-256 \
    -E UTF8 --locale=C.UTF-8 >"$base/initdb.log" 2>&1
  port=$(free_port)
  cat >>"$base/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$base/sock'
max_connections = ${PG_MAX_CONNECTIONS:-300}
shared_buffers = 128MB
fsync = on
log_min_messages = warning
log_connections = ${PG_LOG_CONNECTIONS:-off}
wal_level = ${PG_WAL_LEVEL:-logical}
max_replication_slots = 20
max_wal_senders = 20
max_logical_replication_workers = 8
max_worker_processes = 16
CONF
  ca_file=
  if [ "${PG_TLS:-off}" = on ]; then
    (
      cd "$base"
      openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=tenantd test CA" -keyout ca.key -out ca.pem \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
      openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout data/server.key -out server.csr 2>/dev/null
      printf 'subjectAltName=IP:127.0.0.1\n' >server.ext
      openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile server.ext \
        -out data/server.crt 2>/dev/null
      rm -f ca.key server.csr server.ext
      chmod 600 data/server.key
      chmod 644 ca.pem
    )
    if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$base/data/server.key" "$base/data/server.crt"; fi
    printf 'ssl = on\n' >>"$base/data/postgresql.conf"
    ca_file=$base/ca.pem
  fi
  as_pg "$bin/pg_ctl" -D "$base/data" -l "$base/server.log" -w -t 60 start >/dev/null
  as_pg "$bin/psql" -h "$base/sock" -p "$port" -U "$superuser" -d postgres -v ON_ERROR_STOP=1 -q \
    -c "CREATE ROLE $app_user LOGIN CREATEDB PASSWORD '$app_password'" \
    -c "CREATE ROLE $mover_user LOGIN SUPERUSER PASSWORD '$mover_password'" >/dev/null
  cat >"$dir/env" <<ENV
TEST_PG_HOST=127.0.0.1
TEST_PG_PORT=$port
TEST_PG_SOCKET_DIR=$base/sock
TEST_PG_SUPERUSER=$superuser
TEST_PG_APP_USER=$app_user
TEST_PG_APP_PASSWORD=$app_password
TEST_PG_MOVER_USER=$mover_user
TEST_PG_MOVER_PASSWORD=$mover_password
TEST_PG_CA_FILE=$ca_file
TEST_PG_BIN=$bin
TEST_PG_DATA=$base/data
TEST_PG_LOG=$base/server.log
ENV
  chmod 644 "$dir/env"
  echo "private PostgreSQL on 127.0.0.1:$port ($base)"
  ;;
stop)
  if [ -f "$dir/env" ]; then
    data=$(sed -n 's/^TEST_PG_DATA=//p' "$dir/env")
    if [ -n "$data" ] && [ -d "$data" ]; then
      as_pg "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
      rm -rf "$(dirname "$data")"
    fi
  fi
  rm -rf "$dir"
  ;;
ctl)
  shift 2
  data=$(sed -n 's/^TEST_PG_DATA=//p' "$dir/env")
  log=$(sed -n 's/^TEST_PG_LOG=//p' "$dir/env")
  as_pg "$bin/pg_ctl" -D "$data" -l "$log" -w -t 60 "$@" >/dev/null
  ;;
*)
  echo "usage: $0 start|stop|ctl DIR [pg_ctl arguments]" >&2
  exit 2
  ;;
esac
