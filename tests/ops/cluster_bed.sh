#!/usr/bin/env bash
# The scale-out bed (scripts/cluster) as a user meets it, on free ports in a folder of its own:
# `up` brings three PostgreSQL clusters, three tenantd processes (the binary under test) and
# HAProxy; HTTPS verifies with the bed's CA and only with it; plain HTTP redirects to HTTPS;
# the second and third clusters are database servers pg2 and pg3; a tenant placed on pg2
# works through HAProxy (whichever process answers) and its data is in pg2; a process killed
# with SIGKILL costs no request (HAProxy retries the failed connection elsewhere); a rolling
# restart of a process under a stream of requests costs none either; `purge` leaves nothing.
#   cluster_bed.sh REPO TENANTD_BINARY
set -euo pipefail
repo=${1:?repository root}
bin=${2:?tenantd binary}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
ports() { local n=$1 out=() i; for ((i = 0; i < n; i++)); do out+=("$(free_port)"); done; local IFS=,; echo "${out[*]}"; }

export CLUSTER_DIR
CLUSTER_DIR=$(mktemp -d /var/tmp/tenantd-bed-test-XXXXXX)
rmdir "$CLUSTER_DIR"  # scripts/cluster makes it (mode 711)
export TENANTD_BIN=$bin CLUSTER_PG_PORTS CLUSTER_NODE_PORTS CLUSTER_HTTPS_PORT CLUSTER_HTTP_PORT
CLUSTER_PG_PORTS=$(ports 3)
CLUSTER_NODE_PORTS=$(ports 3)
CLUSTER_HTTPS_PORT=$(free_port)
CLUSTER_HTTP_PORT=$(free_port)
bed="$repo/scripts/cluster"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
check() { if [ "$2" = "$3" ]; then echo "ok: $1"; else fail "$1: expected '$3', got '$2'"; fi; }

# TENANTD_E2E_KEEP=1 keeps the bed (stopped) for its logs, as the e2e fixture keeps its server's.
if [ -n "${TENANTD_E2E_KEEP:-}" ]; then
  trap '"$bed" down >/dev/null 2>&1 || true; echo "kept: $CLUSTER_DIR"' EXIT
else
  trap '"$bed" purge >/dev/null 2>&1 || true' EXIT
fi

show_logs() {
  for f in "$CLUSTER_DIR"/node*/log "$CLUSTER_DIR"/haproxy.log; do
    [ -f "$f" ] && { echo "--- $f (last 30 lines)"; tail -n 30 "$f"; }
  done
}

"$bed" up || { show_logs; echo "FAIL: scripts/cluster up"; exit 1; }
# shellcheck disable=SC1091
. "$CLUSTER_DIR/env"
base="https://localhost:$CLUSTER_HTTPS_PORT"
ca=(--cacert "$CLUSTER_DIR/ca.pem")

# --- HTTPS -----------------------------------------------------------------------------------
check "HTTPS /readyz verified with the bed's CA" "$(curl -s "${ca[@]}" -o /dev/null -w '%{http_code}' "$base/readyz")" 200
status=0
curl -s -o /dev/null "$base/readyz" || status=$?
check "HTTPS without the bed's CA is refused by curl (60: certificate not trusted)" "$status" 60
check "plain HTTP redirects to the HTTPS port" \
  "$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "http://localhost:$CLUSTER_HTTP_PORT/readyz")" \
  "308 $base/readyz"
check "HSTS on HTTPS answers" \
  "$(curl -s "${ca[@]}" -D - -o /dev/null "$base/" | tr -d '\r' | grep -ci '^strict-transport-security: max-age=31536000$')" 1

# --- servers and a tenant on pg2 -------------------------------------------------------------
admin() { curl -s "${ca[@]}" -H "Authorization: Bearer $ADMIN_TOKEN" "$@"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)" 2>/dev/null || true; }
check "GET /admin/servers lists main, pg2 and pg3" \
  "$(admin "$base/admin/servers" | json '",".join(sorted(s["name"] for s in d["items"]))')" "main,pg2,pg3"

created=$(admin -X POST "$base/tenants" -H "Content-Type: application/json" \
  -d '{"id":"bed_acme","name":"Bed Acme","server":"pg2"}')
claim=$(json 'd.get("claim_token","")' <<<"$created")
[ -n "$claim" ] || fail "POST /tenants on pg2: $created"
check "the tenant is placed on pg2" "$(admin "$base/admin/tenants/bed_acme" | json 'd["server"]')" pg2
pg2_port=$(cut -d, -f2 <<<"$CLUSTER_PG_PORTS")
if [ "$(id -u)" = 0 ]; then as_pg=(runuser -u postgres --); superuser=postgres; else as_pg=(); superuser=$(id -un); fi
check "its database is in pg2's cluster" "$(cd / && "${as_pg[@]}" /usr/lib/postgresql/15/bin/psql -h "$CLUSTER_DIR/pg2" \
  -p "$pg2_port" -U "$superuser" -d postgres -tAc "SELECT count(*) FROM pg_database WHERE datname = 'tenant_bed_acme'")" 1

check "register the owner with the claim token" "$(curl -s "${ca[@]}" -o /dev/null -w '%{http_code}' -X POST "$base/auth/register" \
  -H "Content-Type: application/json" \
  -d '{"email":"owner@bed.example","password":"blue-harbor-42","first_name":"O","last_name":"Wner","tenant_id":"bed_acme","claim_token":"'"$claim"'"}')" 201
token=$(curl -s "${ca[@]}" -X POST "$base/auth/login" -H "Content-Type: application/json" \
  -d '{"email":"owner@bed.example","password":"blue-harbor-42"}' | json 'd["token"]')
user_id=$(curl -s "${ca[@]}" -X POST "$base/api/users" -H "Authorization: Bearer $token" -H "Content-Type: application/json" \
  -d '{"email":"jane@bed.example","first_name":"Jane","last_name":"Doe"}' | json 'd["id"]')
# Nine reads through HAProxy (leastconn over three processes): every one finds the user.
seen=""
for _ in $(seq 1 9); do
  seen+="$(curl -s "${ca[@]}" -H "Authorization: Bearer $token" "$base/api/users/$user_id" | json 'd["email"]') "
done
check "nine reads through HAProxy all find the user" "$(tr ' ' '\n' <<<"$seen" | grep -c '^jane@bed.example$')" 9

# --- a process dies: no request is lost --------------------------------------------------------
kill -KILL "$(cat "$CLUSTER_DIR/node2/pid")"
codes=""
for _ in $(seq 1 30); do
  codes+="$(curl -s "${ca[@]}" -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "$base/api/users/$user_id") "
done
check "30 reads right after node2 was killed: all 200" "$(tr ' ' '\n' <<<"$codes" | grep -c '^200$')" 30
rm -f "$CLUSTER_DIR/node2/pid"
"$bed" up >/dev/null || fail "scripts/cluster up again (node2 restarted)"

# --- a rolling restart under a stream of requests ----------------------------------------------
(for _ in $(seq 1 150); do
  curl -s "${ca[@]}" -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $token" "$base/api/users/$user_id"
done >"$CLUSTER_DIR/stream.txt") &
stream=$!
sleep 0.5
"$bed" restart 1 || fail "scripts/cluster restart 1"
wait "$stream"
check "150 reads during the rolling restart of node1: all 200" "$(grep -c '^200$' "$CLUSTER_DIR/stream.txt")" 150

"$bed" status >/dev/null || fail "scripts/cluster status"
[ "$failures" -eq 0 ] || show_logs
[ -n "${TENANTD_E2E_KEEP:-}" ] || "$bed" purge >/dev/null
[ -n "${TENANTD_E2E_KEEP:-}" ] || check "purge removed the bed's folder" "$([ -e "$CLUSTER_DIR" ] && echo present || echo gone)" gone
[ "$failures" -eq 0 ] && echo "cluster bed: all checks passed" || { echo "cluster bed: $failures check(s) failed"; exit 1; }
