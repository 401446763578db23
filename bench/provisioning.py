#!/usr/bin/env python3
"""Tenant lifecycle benchmark (standard library only).

Starts a private PostgreSQL cluster (tests/support/pg_cluster.sh) and a release tenantd, then
measures in one run:
  1. tenant creation latency (POST /tenants, no owner) through the template, p50/p95;
  2. the same by replaying migrations (TENANT_PROVISIONING=migrations);
  3. creating 1,000 tenants (total wall time);
  4. one trivial migration (ADD COLUMN) applied to those 1,000 with `tenantd migrate --migrations-dir`;
  5. a no-op `tenantd migrate` over the same 1,000.
Prints a Markdown table (with the machine description) and writes it to --out.
"""
import argparse
import http.client
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGETS = {
    "p50": "≤ 150 ms",
    "create_1000": "≤ 3 min",
    "migrate_1000": "≤ 60 s",
    "noop_1000": "≤ 2 s",
}


def read_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            if "=" in line:
                k, v = line.strip().split("=", 1)
                env[k] = v
    return env


def psql(pg, sql, db="postgres"):
    cmd = [os.path.join(pg["TEST_PG_BIN"], "psql"), "-h", pg["TEST_PG_SOCKET_DIR"], "-p", pg["TEST_PG_PORT"],
           "-U", pg["TEST_PG_SUPERUSER"], "-d", db, "-v", "ON_ERROR_STOP=1", "-qAtc", sql]
    if os.getuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


class server:
    def __init__(self, binary, env, workdir):
        self.log_path = os.path.join(workdir, "server-%d.log" % time.time_ns())
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([binary, "serve"], env=env, cwd=workdir, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            text = open(self.log_path, errors="replace").read()
            m = re.search(r"tenantd listening on 127\.0\.0\.1:(\d+)", text)
            if m:
                self.port = int(m.group(1))
                break
            if self.proc.poll() is not None:
                raise SystemExit("tenantd exited:\n" + text[-3000:])
            time.sleep(0.05)
        else:
            raise SystemExit("tenantd did not listen")
        while time.time() < deadline:  # readiness: master migrated
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                c.request("GET", "/readyz")
                if c.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise SystemExit("tenantd never became ready")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def create_tenants(port, ids, concurrency=1):
    """POST /tenants for each id; returns per-request latencies in seconds."""
    latencies = []
    lock = threading.Lock()
    queue = list(reversed(ids))
    errors = []

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            with lock:
                if not queue:
                    return
                tid = queue.pop()
            body = json.dumps({"id": tid, "name": "Bench " + tid})
            start = time.perf_counter()
            conn.request("POST", "/tenants", body, {"Content-Type": "application/json"})
            r = conn.getresponse()
            data = r.read()
            took = time.perf_counter() - start
            if r.status != 201:
                errors.append("%s: %d %s" % (tid, r.status, data[:200]))
            with lock:
                latencies.append(took)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit("tenant creation failed:\n" + "\n".join(errors[:10]))
    return latencies


def percentile(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


def machine():
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    pg = subprocess.run(["/usr/lib/postgresql/15/bin/postgres", "--version"], capture_output=True,
                        text=True).stdout.strip()
    return {"nproc": os.cpu_count(), "ram": "%.1f GiB" % (mem_kib / 1024 / 1024), "cpu": cpu, "pg": pg,
            "kernel": platform.release()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(ROOT, "build/release/src/tenantd"))
    ap.add_argument("--latency-samples", type=int, default=100)
    ap.add_argument("--tenants", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=2, help="clients creating the 1,000 tenants")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench/results/provisioning-latest.md"))
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="tenantd-bench-")
    pg_dir = os.path.join(work, "pg")
    subprocess.run([os.path.join(ROOT, "tests/support/pg_cluster.sh"), "start", pg_dir], check=True)
    servers = []
    try:
        pg = read_env(os.path.join(pg_dir, "env"))
        url = "postgresql://%s:%s@%s:%s/" % (pg["TEST_PG_APP_USER"], pg["TEST_PG_APP_PASSWORD"],
                                             pg["TEST_PG_HOST"], pg["TEST_PG_PORT"])
        base = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
        base.update({"JWT_SECRET": "b" * 48, "HOST": "127.0.0.1", "PORT": "0", "LOG_LEVEL": "warn",
                     "TENANT_SIGNUP": "open", "TENANT_CREATES_PER_CLIENT": "1000000",
                     "ADMIN_TOKEN": "a" * 40})

        def env_for(master, prefix, mode):
            e = dict(base)
            e.update({"MASTER_DATABASE_URL": url + master, "TENANT_DB_PREFIX": prefix,
                      "TENANT_PROVISIONING": mode})
            return e

        results = {}
        # 1 + 2: latency, template vs replay, each on its own master database.
        for mode, master, prefix in (("template", "bench_lat_t", "lt_"), ("migrations", "bench_lat_m", "lm_")):
            psql(pg, "CREATE DATABASE %s OWNER %s" % (master, pg["TEST_PG_APP_USER"]))
            s = server(args.binary, env_for(master, prefix, mode), work)
            servers.append(s)
            create_tenants(s.port, ["warm_%s_%d" % (mode[0], i) for i in range(3)])  # template ready, caches warm
            lat = create_tenants(s.port, ["lat_%s_%04d" % (mode[0], i) for i in range(args.latency_samples)])
            results[mode] = (percentile(lat, 50) * 1000, percentile(lat, 95) * 1000)
            s.stop()
            servers.remove(s)
            print("creation via %s: p50 %.1f ms, p95 %.1f ms" % ((mode,) + results[mode]), flush=True)

        # 3: 1,000 tenants through the template.
        master = "bench_fleet"
        psql(pg, "CREATE DATABASE %s OWNER %s" % (master, pg["TEST_PG_APP_USER"]))
        fleet_env = env_for(master, "fl_", "template")
        s = server(args.binary, fleet_env, work)
        servers.append(s)
        start = time.perf_counter()
        lat = create_tenants(s.port, ["fleet_%04d" % i for i in range(args.tenants)], args.concurrency)
        results["create_1000"] = time.perf_counter() - start
        results["create_1000_p50"] = percentile(lat, 50) * 1000
        results["create_1000_p95"] = percentile(lat, 95) * 1000
        print("%d tenants created in %.1f s" % (args.tenants, results["create_1000"]), flush=True)
        s.stop()
        servers.remove(s)
        count = int(psql(pg, "SELECT count(*) FROM tenants WHERE status = 'active'", master))

        # 4: one trivial migration over the fleet.
        mig = os.path.join(work, "migrations")
        os.makedirs(mig)
        shutil.copy(os.path.join(ROOT, "db/migrations/tenant/V001__users.sql"), mig)
        with open(os.path.join(mig, "V002__bench_nickname.sql"), "w") as f:
            f.write("ALTER TABLE users ADD COLUMN nickname text;\n")

        def migrate():
            start = time.perf_counter()
            p = subprocess.run([args.binary, "migrate", "--migrations-dir", mig], env=fleet_env, cwd=work,
                               capture_output=True, text=True)
            took = time.perf_counter() - start
            if p.returncode != 0:
                raise SystemExit("migrate failed:\n" + p.stdout[-3000:] + p.stderr[-3000:])
            return took, p.stdout.strip().splitlines()[-1]

        results["migrate_1000"], summary = migrate()
        print("migration over %d tenants: %.2f s (%s)" % (count, results["migrate_1000"], summary), flush=True)
        migrated = int(psql(pg, "SELECT count(*) FROM tenants WHERE schema_version = 2", master))
        results["noop_1000"], noop_summary = migrate()
        print("no-op migrate: %.2f s (%s)" % (results["noop_1000"], noop_summary), flush=True)

        m = machine()
        ok = lambda good: "✅" if good else "❌"
        p50_t, p95_t = results["template"]
        p50_m, p95_m = results["migrations"]
        lines = [
            "Measured %s with `bench/run-provisioning` (release build, private PostgreSQL cluster, "
            "fsync on)." % time.strftime("%Y-%m-%d", time.gmtime()),
            "",
            "Machine: %s cores (`nproc`), %s RAM, %s; %s; Linux %s." % (m["nproc"], m["ram"], m["cpu"], m["pg"],
                                                                        m["kernel"]),
            "",
            "| measurement | result | target |",
            "|---|---|---|",
            "| tenant creation through the template, p50 / p95 (%d sequential) | %.0f ms / %.0f ms | p50 ≤ 150 ms %s |"
            % (args.latency_samples, p50_t, p95_t, ok(p50_t <= 150)),
            "| tenant creation replaying migrations, p50 / p95 (%d sequential) | %.0f ms / %.0f ms | (comparison) |"
            % (args.latency_samples, p50_m, p95_m),
            "| %d tenants created (%d clients), total | %.1f s (p50 %.0f ms, p95 %.0f ms) | ≤ 3 min %s |"
            % (args.tenants, args.concurrency, results["create_1000"], results["create_1000_p50"],
               results["create_1000_p95"], ok(results["create_1000"] <= 180)),
            "| one migration (ADD COLUMN) over %d tenants, `tenantd migrate` | %.1f s (%d at version 2) | ≤ 60 s %s |"
            % (count, results["migrate_1000"], migrated, ok(results["migrate_1000"] <= 60)),
            "| no-op `tenantd migrate` over %d tenants | %.2f s | ≤ 2 s %s |"
            % (count, results["noop_1000"], ok(results["noop_1000"] <= 2)),
        ]
        text = "\n".join(lines) + "\n"
        os.makedirs(os.path.dirname(args.out), exist_ok=True)
        with open(args.out, "w") as f:
            f.write(text)
        print()
        print(text)
    finally:
        for s in servers:
            s.stop()
        subprocess.run([os.path.join(ROOT, "tests/support/pg_cluster.sh"), "stop", pg_dir])
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
