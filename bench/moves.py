#!/usr/bin/env python3
"""Tenant move benchmark (issue 13), standard library only.

Starts the local bed (scripts/cluster: three PostgreSQL 15 clusters, three tenantd processes,
HAProxy) in its own folder and ports, with the request quotas off, then:
  1. creates one tenant to move (on `main`) and a few others that only serve reads;
  2. loads the moving tenant's `users` table straight on its server with psql (superuser)
     until pg_database_size has grown by --data-mb MiB;
  3. runs paced writes to it (POST /api/users, several threads and sessions, --write-rate in
     total) and reads on the other tenants (GET /api/users/:id) while it is moved --moves
     times back and forth between `main` and `pg2`, one move after the other;
  4. checks the ledger: every id the writers got a 2xx for is in the tenant's users table on
     its final server exactly once, and the table holds nothing else new;
  5. prints a Markdown report with the targets (freeze p50 <= 100 ms, p99 <= 300 ms, max <=
     MOVE_FREEZE_MAX_MS; 0 lost, 0 duplicated, 0 failed requests) and writes it to --out.
Exit status 1 when a target is missed or the ledger does not balance; 2 when the run could
not be made (bed, setup).
"""
import argparse
import http.client
import json
import os
import platform
import random
import re
import ssl
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLUSTER = os.path.join(ROOT, "scripts", "cluster")
PG_BIN = os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin")
PASSWORD = "bench-moves-password-7"
BED_DEFAULTS = {  # the bed's place and ports: apart from a developer's default bed
    "CLUSTER_DIR": "/var/tmp/tenantd-bench-moves",
    "CLUSTER_HTTPS_PORT": "9443",
    "CLUSTER_HTTP_PORT": "9080",
    "CLUSTER_NODE_PORTS": "9101,9102,9103",
    "CLUSTER_PG_PORTS": "56431,56432,56433",
}
SERVER_INDEX = {"main": 1, "pg2": 2, "pg3": 3}  # scripts/cluster: pg1 is `main`
FREEZE_P50_TARGET_MS = 100.0
FREEZE_P99_TARGET_MS = 300.0


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def die(msg):
    log("error: " + msg)
    sys.exit(2)


def percentile(values, p):
    """Nearest rank: the smallest value with at least p% of the values at or below it."""
    if not values:
        return None
    s = sorted(values)
    k = max(1, -(-len(s) * p // 100))  # ceil(n * p / 100)
    return s[int(k) - 1]


def fmt_ms(v, digits=1):
    return "–" if v is None else ("%.*f" % (digits, v))


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def compiler_processes():
    """Processes of a C/C++ build running on the machine (cc1plus, cc1, ld, clang...)."""
    n = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/comm" % pid) as f:
                comm = f.read().strip()
        except OSError:
            continue
        if comm in ("cc1plus", "cc1", "ld", "ld.gold", "ld.lld", "clang", "clang++", "clang-tidy", "lto1"):
            n += 1
    return n


# ---------------------------------------------------------------------------------------------
# the bed


class bed:
    def __init__(self, args):
        self.dir = args.cluster_dir
        self.env = dict(os.environ)
        self.env.update({k: v for k, v in BED_DEFAULTS.items() if k not in os.environ})
        self.env["CLUSTER_DIR"] = self.dir
        self.env.setdefault("TENANTD_BIN", os.path.join(ROOT, "build", "release", "src", "tenantd"))
        # The processes inherit these from `scripts/cluster up`; tenantd's environment wins over
        # its .env (src/app/dotenv). Load comes from a handful of sessions of one tenant.
        self.env["TENANT_REQUESTS_PER_SECOND"] = "0"
        self.env["SESSION_REQUESTS_PER_SECOND"] = "0"

    def cluster(self, *cmd, check=True, quiet=False):
        p = subprocess.run([CLUSTER] + list(cmd), env=self.env, cwd=ROOT, capture_output=True, text=True)
        if not quiet:
            for line in (p.stdout + p.stderr).splitlines():
                log("  cluster: " + line)
        if check and p.returncode != 0:
            die("scripts/cluster %s failed (exit %d)" % (" ".join(cmd), p.returncode))
        return p

    def start(self, fresh):
        if os.path.exists(os.path.join(self.dir, "env")):
            # Stop what may run (a --keep-bed run): the processes must start with this run's
            # environment (quotas off).
            self.cluster("purge" if fresh else "down")
        self.cluster("up")
        self.load()

    def load(self):
        env = {}
        with open(os.path.join(self.dir, "env")) as f:
            for line in f:
                if "=" in line:
                    k, v = line.strip().split("=", 1)
                    env[k] = v.strip('"')
        self.pg_ports = env["PG_PORTS"].split()
        self.node_ports = env["NODE_PORTS"].split()
        self.https_port = int(env["HTTPS_PORT"])
        self.admin_token = env["ADMIN_TOKEN"]
        self.ca = os.path.join(self.dir, "ca.pem")

    def stop(self):
        self.cluster("down")

    def node_logs(self):
        return [os.path.join(self.dir, "node%d" % n, "log") for n in (1, 2, 3)]

    def node_pids(self):
        pids = []
        for n in (1, 2, 3):
            try:
                with open(os.path.join(self.dir, "node%d" % n, "pid")) as f:
                    pids.append(int(f.read().strip()))
            except (OSError, ValueError):
                pass
        return pids

    def node_setting(self, name):
        """A setting as the running processes have it: their environment, then their .env."""
        for pid in self.node_pids():
            try:
                with open("/proc/%d/environ" % pid, "rb") as f:
                    for item in f.read().split(b"\0"):
                        k, _, v = item.decode(errors="replace").partition("=")
                        if k == name:
                            return v
            except OSError:
                pass
        try:
            with open(os.path.join(self.dir, "node1", ".env")) as f:
                for line in f:
                    k, _, v = line.strip().partition("=")
                    if k == name:
                        return v
        except OSError:
            pass
        return None

    # -- psql as the clusters' superuser (as scripts/cluster runs it) --

    def psql_cmd(self, server, db):
        n = SERVER_INDEX[server]
        superuser = "postgres" if os.getuid() == 0 else None
        cmd = [os.path.join(PG_BIN, "psql"), "-h", os.path.join(self.dir, "pg%d" % n), "-p", self.pg_ports[n - 1],
               "-d", db, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
        if superuser:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd + ["-U", "postgres"]
        return cmd

    def psql(self, server, db, sql, stdin=None):
        p = subprocess.run(self.psql_cmd(server, db) + (["-f", "-"] if stdin is not None else ["-c", sql]),
                           input=stdin, capture_output=True, text=True, cwd="/")
        if p.returncode != 0:
            raise RuntimeError("psql on %s/%s failed: %s" % (server, db, p.stderr.strip()[-2000:]))
        return p.stdout.strip()


# ---------------------------------------------------------------------------------------------
# HTTP


class client:
    """One keep-alive connection, through HAProxy (HTTPS) or straight to a process (HTTP)."""

    def __init__(self, b, direct_port=None, timeout=60):
        self.b, self.direct_port, self.timeout = b, direct_port, timeout
        self.ctx = ssl.create_default_context(cafile=b.ca) if direct_port is None else None
        self.conn = None

    def connect(self):
        if self.direct_port is None:
            self.conn = http.client.HTTPSConnection("localhost", self.b.https_port, context=self.ctx,
                                                    timeout=self.timeout)
        else:
            self.conn = http.client.HTTPConnection("127.0.0.1", int(self.direct_port), timeout=self.timeout)

    def request(self, method, path, body=None, token=None, retry_stale=None):
        """(status, parsed body or text); raises OSError/HTTPException on transport failures
        after dropping the connection. A kept-alive connection the other side closed while
        idle is opened again and the request sent once more: always for GET, never for other
        methods unless retry_stale (a write is counted as failed instead of being repeated)."""
        if retry_stale is None:
            retry_stale = method == "GET"
        reused = self.conn is not None
        try:
            return self._request(method, path, body, token)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            if not (reused and retry_stale):
                raise
            return self._request(method, path, body, token)

    def _request(self, method, path, body, token):
        if self.conn is None:
            self.connect()
        headers = {}
        if token:
            headers["Authorization"] = "Bearer " + token
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        try:
            self.conn.request(method, path, data, headers)
            r = self.conn.getresponse()
            raw = r.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        if r.getheader("Connection", "").lower() == "close":
            self.close()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        return r.status, parsed

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def must(result, want, what):
    status, body = result
    if status != want:
        die("%s: HTTP %d %s" % (what, status, json.dumps(body)[:500] if not isinstance(body, str) else body[:500]))
    return body


def login(b, tid, email):
    c = client(b)
    body = must(c.request("POST", "/auth/login", {"email": email, "password": PASSWORD, "tenant_id": tid}), 200,
                "login to " + tid)
    c.close()
    return body["token"]


def create_tenant(b, admin, tid, server):
    email = "owner@%s.example.com" % tid.replace("_", "-")
    must(admin.request("POST", "/tenants", {"id": tid, "name": "Moves bench " + tid, "server": server,
                                            "owner": {"email": email, "password": PASSWORD, "first_name": "Owner",
                                                      "last_name": "Bench"}}, b.admin_token), 201,
         "creating tenant " + tid)
    return email


def tenant_placement(admin, b, tid):
    body = must(admin.request("GET", "/admin/tenants/" + tid, token=b.admin_token), 200, "GET tenant " + tid)
    return body.get("server") or "main", body["database"]


# ---------------------------------------------------------------------------------------------
# load


class writer(threading.Thread):
    """Paced POST /api/users to the moving tenant over its own session and connection."""

    def __init__(self, b, n, token, rate, run_id, t0, stop, direct_port):
        super().__init__(daemon=True)
        self.b, self.n, self.token, self.interval, self.run_id = b, n, token, 1.0 / rate, run_id
        self.t0, self.stop_event = t0, stop
        self.c = client(b, direct_port)
        self.ok = []  # (t_send, latency_ms, id)
        self.bad = []  # (t_send, latency_ms, status, body)
        self.errors = []  # (t_send, latency_ms, exception text): no answer at all

    def run(self):
        seq = 0
        nxt = time.monotonic() + random.random() * self.interval
        while not self.stop_event.is_set():
            now = time.monotonic()
            if nxt > now:
                time.sleep(nxt - now)
            nxt += self.interval
            if nxt < time.monotonic() - 0.5:  # after a long stall, at most half a second of backlog
                nxt = time.monotonic() - 0.5
            seq += 1
            email = "w%d-%d-%s@bench.example.com" % (self.n, seq, self.run_id)
            sent = time.monotonic()
            try:
                status, body = self.c.request("POST", "/api/users", {"email": email, "first_name": "Writer%d" % self.n,
                                                                     "last_name": "Seq%d" % seq}, self.token)
            except (OSError, http.client.HTTPException) as e:
                self.errors.append((sent - self.t0, (time.monotonic() - sent) * 1000, "%s: %s" % (type(e).__name__, e)))
                continue
            lat = (time.monotonic() - sent) * 1000
            if 200 <= status < 300 and isinstance(body, dict) and body.get("id"):
                self.ok.append((sent - self.t0, lat, body["id"]))
            else:
                self.bad.append((sent - self.t0, lat, status, body if isinstance(body, str) else json.dumps(body)))
        self.c.close()


class reader(threading.Thread):
    """Paced GET /api/users/:id on one other tenant."""

    def __init__(self, b, tid, token, ids, rate, t0, stop, direct_port):
        super().__init__(daemon=True)
        self.b, self.tid, self.token, self.ids, self.interval = b, tid, token, ids, 1.0 / rate
        self.t0, self.stop_event = t0, stop
        self.c = client(b, direct_port)
        self.ok = 0
        self.latencies = []
        self.bad = []  # (t, status or exception, body)

    def run(self):
        nxt = time.monotonic() + random.random() * self.interval
        while not self.stop_event.is_set():
            now = time.monotonic()
            if nxt > now:
                time.sleep(nxt - now)
            nxt = max(nxt + self.interval, time.monotonic() - 0.5)
            uid = random.choice(self.ids)
            sent = time.monotonic()
            try:
                status, body = self.c.request("GET", "/api/users/" + uid, token=self.token)
            except (OSError, http.client.HTTPException) as e:
                self.bad.append((sent - self.t0, type(e).__name__, str(e)))
                continue
            self.latencies.append((time.monotonic() - sent) * 1000)
            if status == 200 and isinstance(body, dict) and body.get("id") == uid:
                self.ok += 1
            else:
                self.bad.append((sent - self.t0, status, body if isinstance(body, str) else json.dumps(body)))
        self.c.close()


class machine_sampler(threading.Thread):
    def __init__(self, stop, period=5.0):
        super().__init__(daemon=True)
        self.stop_event, self.period = stop, period
        self.load1_max = 0.0
        self.compilers_max = 0
        self.samples_with_compilers = 0
        self.samples = 0

    def run(self):
        while True:
            self.load1_max = max(self.load1_max, loadavg()[0])
            c = compiler_processes()
            self.compilers_max = max(self.compilers_max, c)
            self.samples += 1
            self.samples_with_compilers += 1 if c else 0
            if self.stop_event.wait(self.period):
                return


# ---------------------------------------------------------------------------------------------
# the run


def seed(b, server, database, data_mb):
    """Rows straight into users on the tenant's server until pg_database_size has grown by
    data_mb MiB (the new database's own size, ~7.5 MiB, not counted)."""
    size = empty = int(b.psql(server, database, "SELECT pg_database_size(current_database())"))
    want = empty + data_mb * 1024 * 1024
    inserted = 0
    batch = 20000
    while size < want:
        first = inserted + 1
        b.psql(server, database,
               "INSERT INTO users (id, email, first_name, last_name) SELECT gen_random_uuid(), "
               "'seed' || g || '@example.com', repeat('x', 100), repeat('y', 100) "
               "FROM generate_series(%d, %d) g" % (first, first + batch - 1))
        inserted += batch
        new_size = int(b.psql(server, database, "SELECT pg_database_size(current_database())"))
        per_row = max(1.0, (new_size - size) / batch)
        size = new_size
        batch = max(1000, min(200000, int((want - size) / per_row) + 1))
    b.psql(server, database, "VACUUM ANALYZE users")
    size = int(b.psql(server, database, "SELECT pg_database_size(current_database())"))
    return inserted, size, empty


def run_moves(b, args, tid, moves_out):
    admin = client(b)
    for i in range(args.moves):
        cur, _ = tenant_placement(admin, b, tid)
        to = "pg2" if cur == "main" else "main"
        t_post = time.monotonic()
        status, body = admin.request("POST", "/admin/tenants/%s/move" % tid, {"to": to}, b.admin_token,
                                     retry_stale=True)
        t_answer = time.monotonic()
        tries = 0
        while status == 409 and tries < 100:  # a move still finishing (should not happen: we wait)
            time.sleep(0.2)
            tries += 1
            status, body = admin.request("POST", "/admin/tenants/%s/move" % tid, {"to": to}, b.admin_token,
                                         retry_stale=True)
            t_answer = time.monotonic()
        if status != 202:
            moves_out.append({"n": i + 1, "from": cur, "to": to, "state": "not started",
                              "error": "POST move: HTTP %d %s" % (status, json.dumps(body)[:300]),
                              "t_post": t_post, "t_answer": t_answer, "t_end": time.monotonic(), "states": []})
            log("move %d: not started: HTTP %d %s" % (i + 1, status, body))
            time.sleep(args.pause)
            continue
        mid = body["id"]
        states = [(0.0, body["state"])]
        deadline = t_post + args.move_timeout
        while True:
            time.sleep(args.poll)
            try:
                status, m = admin.request("GET", "/admin/moves/" + mid, token=b.admin_token)
            except (OSError, http.client.HTTPException):
                continue
            if status != 200:
                continue
            if m["state"] != states[-1][1]:
                states.append((time.monotonic() - t_post, m["state"]))
            if m["state"] in ("done", "aborted"):
                break
            if time.monotonic() > deadline:
                m = dict(m, state=m["state"] + " (timed out)")
                break
        t_end = time.monotonic()
        rec = dict(m, n=i + 1, t_post=t_post, t_answer=t_answer, t_end=t_end, states=states)
        moves_out.append(rec)
        log("move %d/%d %s -> %s: %s in %.1f s, freeze %s ms, attempts %s%s" % (
            i + 1, args.moves, m["from"], m["to"], m["state"], t_end - t_post, m.get("freeze_ms"), m.get("attempts"),
            (", error: " + m["error"]) if m.get("error") else ""))
        if m["state"] not in ("done", "aborted"):
            break  # stuck: do not pile up moves
        time.sleep(args.pause)
    admin.close()


def held_from_logs(b):
    """move id -> 'writes were held X ms' (hold to release, the mover's log line)."""
    out = {}
    pat = re.compile(r"move ([0-9a-f-]{36}): tenant \S+ now on \S+; writes were held ([0-9.]+) ms")
    for path in b.node_logs():
        try:
            with open(path, errors="replace") as f:
                for line in f:
                    m = pat.search(line)
                    if m:
                        out[m.group(1)] = float(m.group(2))
        except OSError:
            pass
    return out


def log_lines_about(b, needles, since_offsets, limit=40):
    """Warning/error lines of the node logs written during the run, and lines naming needles."""
    lines = []
    for path, start in zip(b.node_logs(), since_offsets):
        try:
            with open(path, errors="replace") as f:
                f.seek(start)
                for line in f:
                    low = line.lower()
                    if '"warn' in low or '"error' in low or '"critical' in low or any(n in line for n in needles):
                        lines.append("%s: %s" % (os.path.basename(os.path.dirname(path)), line.rstrip()[:400]))
        except OSError:
            pass
    return lines[:limit], len(lines)


def ledger(b, server, database, acked_ids, run_id):
    data = "".join(i + "\n" for i in acked_ids)
    script = ("CREATE TEMP TABLE acked (id uuid NOT NULL);\n"
              "COPY acked FROM STDIN;\n" + data + "\\.\n"
              "SELECT count(*) FROM users;\n"
              "SELECT count(*) FROM acked;\n"
              "SELECT count(DISTINCT id) FROM acked;\n"
              "SELECT count(*) FROM acked a WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = a.id);\n"
              "SELECT count(*) FROM (SELECT u.id FROM users u JOIN (SELECT DISTINCT id FROM acked) a USING (id) "
              "GROUP BY u.id HAVING count(*) > 1) d;\n"
              "SELECT count(*) FROM users WHERE email LIKE 'w%%-%s@bench.example.com';\n"
              "SELECT count(*) FROM users u WHERE email LIKE 'w%%-%s@bench.example.com' "
              "AND NOT EXISTS (SELECT 1 FROM acked a WHERE a.id = u.id);\n"
              "SELECT count(*) - count(DISTINCT lower(email)) FROM users;\n" % (run_id, run_id))
    out = b.psql(server, database, None, stdin=script).split("\n")
    keys = ["rows", "acked", "acked_distinct", "missing", "duplicated", "run_rows", "unacked_rows", "dup_emails"]
    return dict(zip(keys, (int(x) for x in out)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--moves", type=int, default=50, help="moves of the tenant, alternating main <-> pg2")
    ap.add_argument("--data-mb", type=int, default=50,
                    help="MiB of data loaded into the moving tenant before the run (growth of pg_database_size)")
    ap.add_argument("--write-rate", type=float, default=300, help="writes/s to the moving tenant, in total")
    ap.add_argument("--writers", type=int, default=12, help="writer threads (each its own session and connection)")
    ap.add_argument("--read-tenants", type=int, default=3, help="other tenants (on main, pg2, pg3) serving reads")
    ap.add_argument("--read-rate", type=float, default=90, help="reads/s over the other tenants, in total")
    ap.add_argument("--warmup", type=float, default=5, help="seconds of load before the first move")
    ap.add_argument("--pause", type=float, default=1, help="seconds between a move's end and the next")
    ap.add_argument("--cooldown", type=float, default=3, help="seconds of load after the last move")
    ap.add_argument("--poll", type=float, default=0.1, help="seconds between GET /admin/moves/:id")
    ap.add_argument("--move-timeout", type=float, default=900, help="give up waiting for one move after this")
    ap.add_argument("--direct", action="store_true", help="load the processes directly instead of through HAProxy")
    ap.add_argument("--cluster-dir", default=os.environ.get("CLUSTER_DIR", BED_DEFAULTS["CLUSTER_DIR"]))
    ap.add_argument("--reuse-bed", action="store_true", help="keep the bed's data from an earlier run (default: purge)")
    ap.add_argument("--keep-bed", action="store_true", help="leave the bed running at the end")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "moves-latest.md"))
    args = ap.parse_args()
    if args.moves < 1 or args.writers < 1 or args.write_rate <= 0:
        die("--moves, --writers and --write-rate must be positive")

    started_wall = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    load_at_start = loadavg()
    compilers_at_start = compiler_processes()
    log("load average at start: %s; build processes running: %d" % (load_at_start, compilers_at_start))

    b = bed(args)
    log("starting the bed in %s" % args.cluster_dir)
    b.start(fresh=not args.reuse_bed)
    try:
        rc = bench(b, args, started_wall, load_at_start, compilers_at_start)
    finally:
        if args.keep_bed:
            log("the bed stays up (%s); stop it with CLUSTER_DIR=%s scripts/cluster down" % (b.dir, b.dir))
        else:
            b.stop()
    sys.exit(rc)


def bench(b, args, started_wall, load_at_start, compilers_at_start):
    run_id = time.strftime("%H%M%S") + "%04x" % random.randrange(65536)
    tid = "mv_" + run_id
    admin = client(b)
    direct_ports = b.node_ports if args.direct else None

    def port_for(i):
        return None if direct_ports is None else direct_ports[i % len(direct_ports)]

    quota_tenant = b.node_setting("TENANT_REQUESTS_PER_SECOND")
    quota_session = b.node_setting("SESSION_REQUESTS_PER_SECOND")
    freeze_max_setting = b.node_setting("MOVE_FREEZE_MAX_MS")
    if freeze_max_setting is None:  # the product's default (src/app/config_table.cpp)
        with open(os.path.join(ROOT, "src", "app", "config_table.cpp")) as f:
            m = re.search(r'\{"MOVE_FREEZE_MAX_MS",\s*whole_number,\s*"(\d+)"', f.read())
        freeze_max_setting = m.group(1) if m else None
    freeze_max = float(freeze_max_setting) if freeze_max_setting else None
    grace = b.node_setting("MOVE_SOURCE_GRACE_S")
    log("quotas in the processes: TENANT_REQUESTS_PER_SECOND=%s SESSION_REQUESTS_PER_SECOND=%s; MOVE_FREEZE_MAX_MS=%s"
        % (quota_tenant, quota_session, freeze_max_setting))

    # -- tenants --
    log("creating tenant %s on main and %d reading tenants" % (tid, args.read_tenants))
    owner = create_tenant(b, admin, tid, "main")
    readers_setup = []
    servers = ["main", "pg2", "pg3"]
    for k in range(args.read_tenants):
        rtid = "rd%d_%s" % (k + 1, run_id)
        remail = create_tenant(b, admin, rtid, servers[k % 3])
        token = login(b, rtid, remail)
        ids = []
        for n in range(20):
            body = must(admin.request("POST", "/api/users", {"email": "r%d@%s.example.com" % (n, rtid.replace("_", "-")),
                                                             "first_name": "Reader", "last_name": "N%d" % n}, token),
                        201, "user in " + rtid)
            ids.append(body["id"])
        readers_setup.append((rtid, servers[k % 3], token, ids))

    server, database = tenant_placement(admin, b, tid)
    log("seeding %s (%s on %s) to %d MiB" % (tid, database, server, args.data_mb))
    t = time.monotonic()
    seeded, size, empty_size = seed(b, server, database, args.data_mb)
    seed_s = time.monotonic() - t
    baseline = int(b.psql(server, database, "SELECT count(*) FROM users"))
    log("seeded %d rows in %.1f s; database %.1f MiB (%.1f MiB new); %d rows in users" % (
        seeded, seed_s, size / 1048576, (size - empty_size) / 1048576, baseline))

    tokens = [login(b, tid, owner) for _ in range(args.writers)]  # one session per writer
    log_offsets = []
    for path in b.node_logs():
        try:
            log_offsets.append(os.path.getsize(path))
        except OSError:
            log_offsets.append(0)

    # -- load and moves --
    stop = threading.Event()
    t0 = time.monotonic()
    cpu0 = os.times()
    writers = [writer(b, n + 1, tokens[n], args.write_rate / args.writers, run_id, t0, stop, port_for(n))
               for n in range(args.writers)]
    readers = [reader(b, rtid, token, ids, args.read_rate / max(1, len(readers_setup)), t0, stop, port_for(k))
               for k, (rtid, _, token, ids) in enumerate(readers_setup)]
    sampler_stop = threading.Event()
    sampler = machine_sampler(sampler_stop)
    sampler.start()
    for th in writers + readers:
        th.start()
    log("load running: %.0f writes/s over %d writers, %.0f reads/s over %d tenants; warm-up %.0f s" % (
        args.write_rate, args.writers, args.read_rate, len(readers), args.warmup))
    time.sleep(args.warmup)
    moves = []
    t_moves = time.monotonic()
    try:
        run_moves(b, args, tid, moves)
    finally:
        t_moves_end = time.monotonic()
        time.sleep(args.cooldown)
        stop.set()
        for th in writers + readers:
            th.join(120)
        sampler_stop.set()
        sampler.join()
    t_end = time.monotonic()
    cpu1 = os.times()
    generator_cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    load_at_end = loadavg()
    log("load stopped after %.1f s" % (t_end - t0))

    # -- ledger --
    final_server, final_db = tenant_placement(admin, b, tid)
    ok = [w for th in writers for w in th.ok]
    bad = [w for th in writers for w in th.bad]
    errs = [w for th in writers for w in th.errors]
    acked = [w[2] for w in ok]
    led = ledger(b, final_server, final_db, acked, run_id)
    led["expected_rows"] = baseline + led["acked_distinct"]
    api_total = None
    st, body = admin.request("GET", "/api/users?page_size=1", token=login(b, tid, owner))
    if st == 200 and isinstance(body, dict):
        api_total = body.get("total")
    # Precise durations from master (the API shows whole seconds).
    durations = {}
    rows = b.psql("main", "tenantd_master",
                  "SELECT id, extract(epoch FROM finished_at - started_at), "
                  "extract(epoch FROM flipped_at - started_at) FROM tenant_moves WHERE tenant_id = '%s'" % tid)
    for line in rows.splitlines():
        mid, total, flip = line.split("|")
        durations[mid] = (float(total) if total else None, float(flip) if flip else None)
    held = held_from_logs(b)
    interesting, n_interesting = log_lines_about(b, [m["id"] for m in moves if m.get("id") and m.get("state") != "done"],
                                                 log_offsets)

    # -- numbers --
    lat_all = [w[1] for w in ok] + [w[1] for w in bad]
    windows = [(m["t_post"] - t0, m["t_end"] - t0) for m in moves]

    def in_moves(ts):
        return any(a <= ts <= z for a, z in windows)

    lat_moves = [w[1] for w in ok + bad if in_moves(w[0])]
    for m in moves:
        a, z = m["t_post"] - t0, m["t_end"] - t0
        lm = [w[1] for w in ok + bad if a <= w[0] <= z]
        m["write_max_ms"] = max(lm) if lm else None
        m["writes"] = len(lm)
    done = [m for m in moves if m.get("state") == "done"]
    aborted = [m for m in moves if m.get("state") != "done"]
    freezes = [m["freeze_ms"] for m in done if m.get("freeze_ms") is not None]
    attempts = [m.get("attempts", 0) for m in moves]
    f50, f99, fmax = percentile(freezes, 50), percentile(freezes, 99), (max(freezes) if freezes else None)
    n429 = sum(1 for w in bad if w[2] == 429)
    failed_moving = len(bad) - n429 + len(errs)
    reads_ok = sum(r.ok for r in readers)
    reads_bad = [x for r in readers for x in r.bad]
    n429_reads = sum(1 for x in reads_bad if x[1] == 429)
    read_lat = [x for r in readers for x in r.latencies]
    duration_load = t_end - t0
    rows_match = led["rows"] == led["expected_rows"]
    lost = led["missing"]
    duplicated = led["duplicated"] + (led["acked"] - led["acked_distinct"]) + led["dup_emails"]

    def mark(good):
        return "✅" if good else "❌"

    checks = []  # (what, target, measured, ok)
    checks.append(("moves done", "%d of %d" % (args.moves, args.moves), "%d done, %d aborted or unfinished" % (
        len(done), len(aborted)), len(done) == args.moves))
    checks.append(("write freeze p50", "≤ %.0f ms" % FREEZE_P50_TARGET_MS, fmt_ms(f50) + " ms",
                   f50 is not None and f50 <= FREEZE_P50_TARGET_MS))
    checks.append(("write freeze p99", "≤ %.0f ms" % FREEZE_P99_TARGET_MS, fmt_ms(f99) + " ms",
                   f99 is not None and f99 <= FREEZE_P99_TARGET_MS))
    checks.append(("write freeze max", "≤ MOVE_FREEZE_MAX_MS (%s ms)" % (freeze_max_setting or "?"),
                   fmt_ms(fmax) + " ms", fmax is not None and freeze_max is not None and fmax <= freeze_max))
    checks.append(("acknowledged writes lost", "0", str(lost), lost == 0))
    checks.append(("acknowledged writes duplicated", "0", str(duplicated), duplicated == 0))
    checks.append(("rows in users = before + acknowledged", "%d" % led["expected_rows"], "%d" % led["rows"],
                   rows_match))
    checks.append(("failed writes to the moving tenant (non-2xx other than 429, no answer)", "0", str(failed_moving),
                   failed_moving == 0))
    checks.append(("failed reads on the other tenants (other than 429)", "0", str(len(reads_bad) - n429_reads),
                   len(reads_bad) - n429_reads == 0))
    all_ok = all(c[3] for c in checks)

    # -- report --
    L = []
    L.append("# Tenant moves under load (issue 13)")
    L.append("")
    L.append("Generated by `bench/run-moves` (bench/moves.py) on %s. Every figure below comes from this run." %
             started_wall)
    L.append("")
    L.append("## Machine and bed")
    L.append("")
    L.append("| | |")
    L.append("|---|---|")
    L.append("| machine | %s, %d cores (nproc), %s, Python %s |" % (platform.machine(), os.cpu_count(),
                                                                   platform.platform(), platform.python_version()))
    L.append("| load average at start (1/5/15 min) | %.2f / %.2f / %.2f |" % tuple(load_at_start))
    L.append("| load average at end | %.2f / %.2f / %.2f |" % tuple(load_at_end))
    L.append("| highest 1-min load average during the run | %.2f |" % sampler.load1_max)
    L.append("| other build processes (cc1plus, ld, …) | %d at start; up to %d, present in %d of %d samples (every 5 s) |"
             % (compilers_at_start, sampler.compilers_max, sampler.samples_with_compilers, sampler.samples))
    binary = b.env["TENANTD_BIN"]
    try:
        built = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(os.path.getmtime(binary)))
    except OSError:
        built = "?"
    head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip() or "?"
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no", "--", "src"],
                           capture_output=True, text=True).stdout.strip().splitlines()
    L.append("| tenantd | `%s`, built %s; checkout %s%s |" % (
        os.path.relpath(binary, ROOT), built, head,
        (" with %d modified file(s) under src/" % len(dirty)) if dirty else ""))
    L.append("| bed | scripts/cluster in `%s`: 3 × PostgreSQL 15, 3 × tenantd (release), HAProxy |" % b.dir)
    L.append("| load path | %s |" % ("straight to the 3 processes (HTTP)" if args.direct else
                                      "HAProxy, HTTPS on :%d (keep-alive)" % b.https_port))
    L.append("| load generator's own CPU (this Python process, during the load) | %.2f cores on average |" % (
        generator_cpu / duration_load))
    L.append("| processes' quotas | TENANT_REQUESTS_PER_SECOND=%s, SESSION_REQUESTS_PER_SECOND=%s |" %
             (quota_tenant, quota_session))
    L.append("| MOVE_FREEZE_MAX_MS / MOVE_SOURCE_GRACE_S | %s / %s |" % (freeze_max_setting, grace or "default"))
    L.append("")
    if sampler.load1_max > os.cpu_count() or compilers_at_start or sampler.compilers_max:
        L.append("> Other load was present: the 1-min load average reached %.2f on %d cores, and build processes "
                 "(cc1plus, ld, …) were running at %d of %d samples. The bed, the load generator and everything "
                 "else share those cores, so the latencies and freezes include CPU contention." % (
                     sampler.load1_max, os.cpu_count(), sampler.samples_with_compilers, sampler.samples))
        L.append("")
    L.append("## Parameters")
    L.append("")
    L.append("| | |")
    L.append("|---|---|")
    L.append("| moving tenant | `%s`, %d seeded rows + %d before (owner) = %d rows; pg_database_size %.1f MiB "
             "(%.1f MiB of data over the new database's %.1f MiB), seeded in %.1f s |" % (
                 tid, seeded, baseline - seeded, baseline, size / 1048576, (size - empty_size) / 1048576,
                 empty_size / 1048576, seed_s))
    L.append("| moves | %d, alternating main ↔ pg2, one after the other, %.1f s apart |" % (args.moves, args.pause))
    L.append("| writes | POST /api/users, %.0f/s target over %d threads (one session each); achieved %.1f/s over "
             "%.1f s |" % (args.write_rate, args.writers, (len(ok) + len(bad) + len(errs)) / duration_load,
                          duration_load))
    L.append("| reads | GET /api/users/:id on %d other tenants (%s), %.0f/s target; achieved %.1f/s |" % (
        len(readers_setup), ", ".join("%s on %s" % (r[0], r[1]) for r in readers_setup), args.read_rate,
        (reads_ok + len(reads_bad)) / duration_load))
    L.append("| warm-up / cool-down | %.0f s / %.0f s of load before the first and after the last move |" % (
        args.warmup, args.cooldown))
    L.append("")
    L.append("## Targets")
    L.append("")
    L.append("| | target | measured | |")
    L.append("|---|---|---|---|")
    for what, target, measured, good in checks:
        L.append("| %s | %s | %s | %s |" % (what, target, measured, mark(good)))
    L.append("")
    if freezes:
        rank = int(-(-len(freezes) * 99 // 100))
        L.append("Percentiles are nearest-rank: with %d freezes, p99 is the %s." % (
            len(freezes), "highest" if rank == len(freezes) else "%d-th smallest" % rank))
    L.append("")
    L.append("## Write freeze and latency")
    L.append("")
    L.append("| | p50 | p99 | max |")
    L.append("|---|---|---|---|")
    L.append("| write freeze (`freeze_ms` of the moves, hold → flip), ms | %s | %s | %s |" % (
        fmt_ms(f50), fmt_ms(f99), fmt_ms(fmax)))
    hv = [held[m["id"]] for m in done if m.get("id") in held]
    if hv:
        L.append("| writes held, hold → release (the mover's log line), ms | %s | %s | %s |" % (
            fmt_ms(percentile(hv, 50)), fmt_ms(percentile(hv, 99)), fmt_ms(max(hv))))
    L.append("| write latency, whole run (%d writes), ms | %s | %s | %s |" % (
        len(lat_all), fmt_ms(percentile(lat_all, 50)), fmt_ms(percentile(lat_all, 99)),
        fmt_ms(max(lat_all) if lat_all else None)))
    L.append("| write latency while a move ran (%d writes), ms | %s | %s | %s |" % (
        len(lat_moves), fmt_ms(percentile(lat_moves, 50)), fmt_ms(percentile(lat_moves, 99)),
        fmt_ms(max(lat_moves) if lat_moves else None)))
    lat_quiet = [w[1] for w in ok + bad if not in_moves(w[0])]
    L.append("| write latency with no move running (%d writes), ms | %s | %s | %s |" % (
        len(lat_quiet), fmt_ms(percentile(lat_quiet, 50)), fmt_ms(percentile(lat_quiet, 99)),
        fmt_ms(max(lat_quiet) if lat_quiet else None)))
    L.append("| read latency, other tenants (%d reads), ms | %s | %s | %s |" % (
        len(read_lat), fmt_ms(percentile(read_lat, 50)), fmt_ms(percentile(read_lat, 99)),
        fmt_ms(max(read_lat) if read_lat else None)))
    L.append("")
    totals = [durations.get(m.get("id"), (None, None))[0] for m in moves]
    totals = [x for x in totals if x is not None]
    L.append("Move duration (started_at → finished_at, from master's tenant_moves): p50 %s s, max %s s; the moves "
             "took %.1f s of wall time in all; cut-overs tried: %d in total (%d moves needed more than one)." % (
                 fmt_ms(percentile(totals, 50), 2), fmt_ms(max(totals) if totals else None, 2),
                 t_moves_end - t_moves, sum(attempts), sum(1 for a in attempts if a > 1)))
    L.append("")
    L.append("## Ledger (final server: %s, database %s)" % (final_server, final_db))
    L.append("")
    L.append("| | |")
    L.append("|---|---|")
    L.append("| rows before the load | %d |" % baseline)
    L.append("| writes acknowledged (2xx) | %d (%d distinct ids) |" % (led["acked"], led["acked_distinct"]))
    L.append("| acknowledged ids missing from users | %d |" % led["missing"])
    L.append("| acknowledged ids present more than once | %d |" % led["duplicated"])
    L.append("| rows in users now | %d (expected %d) |" % (led["rows"], led["expected_rows"]))
    L.append("| rows of this run's writers / of them never acknowledged | %d / %d |" % (
        led["run_rows"], led["unacked_rows"]))
    L.append("| the API's count (GET /api/users total) | %s |" % api_total)
    L.append("| non-2xx answers to writes: 429 / other | %d / %d |" % (n429, len(bad) - n429))
    L.append("| writes with no answer (connection error) | %d |" % len(errs))
    L.append("| reads: ok / 429 / other failures | %d / %d / %d |" % (reads_ok, n429_reads, len(reads_bad) - n429_reads))
    L.append("")
    if bad or errs or reads_bad:
        L.append("Failed requests (first 10):")
        L.append("")
        for w in bad[:10]:
            L.append("- write at +%.2f s: HTTP %s after %.0f ms: `%s`" % (w[0], w[2], w[1], str(w[3])[:200]))
        for w in errs[:10]:
            L.append("- write at +%.2f s: no answer after %.0f ms: `%s`" % (w[0], w[1], w[2][:200]))
        for x in reads_bad[:10]:
            L.append("- read at +%.2f s: %s `%s`" % (x[0], x[1], str(x[2])[:200]))
        L.append("")
    L.append("## Each move")
    L.append("")
    L.append("| # | from → to | state | cut-overs | freeze_ms | held (log), ms | duration, s | flip after, s | "
             "POST answered after, s | seen by the client, s | writes during | max write latency, ms | error |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for m in moves:
        total, flip = durations.get(m.get("id"), (None, None))
        L.append("| %d | %s → %s | %s | %s | %s | %s | %s | %s | %.2f | %.2f | %d | %s | %s |" % (
            m["n"], m.get("from"), m.get("to"), m.get("state"), m.get("attempts", "–"), fmt_ms(m.get("freeze_ms")),
            fmt_ms(held.get(m.get("id"))), fmt_ms(total, 2), fmt_ms(flip, 2), m["t_answer"] - m["t_post"],
            m["t_end"] - m["t_post"],
            m.get("writes", 0), fmt_ms(m.get("write_max_ms")), (m.get("error") or "").replace("|", "\\|")))
    L.append("")
    L.append("Columns of the table of moves: *duration* and *flip after* are started_at → finished_at and → "
             "flipped_at in master; *held (log)* is the mover's own \"writes were held\" figure (hold → release); "
             "*POST answered after* and *seen by the client* are measured by this script (POST sent → 202, and → "
             "the first GET /admin/moves/:id showing done or aborted, polled every %.1f s); *writes during* and "
             "*max write latency* are the writes sent in that client-side window." % args.poll)
    L.append("")
    if aborted:
        L.append("Aborted moves' errors:")
        L.append("")
        for m in aborted:
            L.append("- move %d (%s): %s" % (m["n"], m.get("id", "–"), m.get("error")))
        L.append("")
    if n_interesting:
        L.append("Warnings and errors in the processes' logs during the run (%d lines, first %d):" % (
            n_interesting, len(interesting)))
        L.append("")
        L.append("```")
        L.extend(interesting)
        L.append("```")
        L.append("")
    L.append("Overall: %s" % ("all targets met, ledger balanced ✅" if all_ok else "targets missed ❌"))
    report = "\n".join(L) + "\n"
    print(report)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(report)
    log("report written to %s" % args.out)
    return 0 if all_ok else 1


if __name__ == "__main__":
    main()
