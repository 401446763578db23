#!/usr/bin/env bash
# Checks deploy/tenantd.service with `systemd-analyze verify`. The unit names
# /usr/local/bin/tenantd and user tenantd, which a build machine lacks, so a copy whose
# Exec lines point at the built binary (and User/Group at root) is verified; any other
# complaint fails the test.
#   tests/ops/systemd_verify.sh <unit file> <built tenantd binary>
set -euo pipefail
unit=$1
binary=$2
command -v systemd-analyze >/dev/null || { echo "systemd-analyze not found (Debian package systemd)"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed -e "s|/usr/local/bin/tenantd|$binary|g" -e 's/^User=.*/User=root/' -e 's/^Group=.*/Group=root/' \
  "$unit" >"$work/tenantd.service"
# The environment file is optional at verify time only if it exists; give it one.
sed -i "s|^EnvironmentFile=.*|EnvironmentFile=$work/env|" "$work/tenantd.service"
: >"$work/env"
grep -q "^ExecStart=$binary serve$" "$work/tenantd.service"
status=0
out=$(systemd-analyze verify --man=no "$work/tenantd.service" 2>&1) || status=$?
# verify also loads units this one names; a build machine without postgresql.service is
# not the unit's fault. Anything else it prints is.
problems=$(printf '%s\n' "$out" | grep -v -e '^$' -e 'postgresql\.service' || true)
if [ "$status" -ne 0 ] || [ -n "$problems" ]; then
  printf 'systemd-analyze verify (exit %s) reported:\n%s\n' "$status" "$out"
  exit 1
fi
# The original must name what the brief promises.
for line in 'User=tenantd' 'EnvironmentFile=/etc/tenantd/env' 'ExecStart=/usr/local/bin/tenantd serve' \
  'Restart=on-failure' 'KillSignal=SIGTERM' 'TimeoutStopSec=35' 'NoNewPrivileges=yes' 'ProtectSystem=strict' \
  'ProtectHome=yes' 'PrivateTmp=yes'; do
  grep -qx "$line" "$unit" || { echo "missing in $unit: $line"; exit 1; }
done
echo "systemd unit verified"
