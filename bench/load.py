#!/usr/bin/env python3
"""Request-path load benchmark (standard library only); run it through bench/run.

Starts a private PostgreSQL cluster (tests/support/pg_cluster.sh) and a release tenantd,
creates tenants through POST /tenants, seeds their users with COPY (one precomputed Argon2id
hash for every seeded account, sessions inserted with SQL), mints one HS256 access token per
line of a token file, and in one run measures:
  ceilings  pgbench (the server's SELECT by primary key, -M prepared) at the scenario's client
            count and at 16 clients; GET / through tenantd (HTTP ceiling); raw Argon2id rate
  a  GET /api/users/:id, 20 tenants x 1,000 users, 64 connections
  b  the same over 1,000 tenants with a budget of 50 tenant connections
  c  read/write mix: 80 % GET, 10 % POST /api/users, 10 % PUT /api/users/:id
  d  a login storm (16 connections) while (a) runs
  e  10,000 idle keep-alive connections held open while (a) runs
Each run reports req/s, p50, p99, errors, server RSS and CPU, PostgreSQL's CPU and the most
tenant connections tenantd held. Prints a Markdown table and writes it to --out.
"""
import argparse
import base64
import hashlib
import hmac
import http.client
import json
import os
import platform
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
WRK_DIR = os.path.join(BENCH, "wrk")
CLK_TCK = os.sysconf("SC_CLK_TCK")
PASSWORD = "bench-password-1"
JWT_SECRET = "load-bench-secret-" + "x" * 40
MEMBER_PERMISSIONS = ["users:read", "users:write", "tenant:read"]
MASTER_DB = "load_master"
TENANT_PREFIX = "lb_"  # database name prefix; tenant ids are t0000, t0001, ...
# The server's SELECT by primary key (src/db/user_repository.cpp, u_find); the seeded ids are
# '<tenant:08d>-0000-4000-8000-<n:012d>' so pgbench can build one from a random integer.
# pgbench would take ":MI" in the format for a variable, so the colons are written E'\x3A'
# (the same constant once parsed).
PGBENCH_SQL = ("SELECT id, email, first_name, last_name, "
               "to_char(created_at AT TIME ZONE 'UTC', E'YYYY-MM-DD\"T\"HH24\\x3AMI\\x3ASS\"Z\"'), "
               "to_char(updated_at AT TIME ZONE 'UTC', E'YYYY-MM-DD\"T\"HH24\\x3AMI\\x3ASS\"Z\"') "
               "FROM users WHERE id = ('00000000-0000-4000-8000-' || lpad(CAST(:n AS text), 12, '0'))::uuid;")


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def read_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            if "=" in line:
                k, v = line.strip().split("=", 1)
                env[k] = v
    return env


def psql_cmd(pg, db):
    cmd = [os.path.join(pg["TEST_PG_BIN"], "psql"), "-h", pg["TEST_PG_SOCKET_DIR"], "-p", pg["TEST_PG_PORT"],
           "-U", pg["TEST_PG_SUPERUSER"], "-d", db, "-v", "ON_ERROR_STOP=1", "-qAt"]
    if os.getuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    return cmd


def psql(pg, sql, db="postgres"):
    return subprocess.run(psql_cmd(pg, db) + ["-c", sql], check=True, capture_output=True, text=True).stdout.strip()


def psql_stream(pg, db, chunks):
    """Feeds a psql script (which may carry inline COPY data) to one psql process."""
    p = subprocess.Popen(psql_cmd(pg, db) + ["-f", "-"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    err = []
    t = threading.Thread(target=lambda: err.append(p.stderr.read()))
    t.start()
    for chunk in chunks:
        p.stdin.write(chunk.encode())
    p.stdin.close()
    t.join()
    if p.wait() != 0:
        raise SystemExit("psql failed: " + err[0].decode(errors="replace")[-2000:])


def set_host_auth(pg, method):
    """Switches the cluster's TCP authentication (pg_hba.conf host lines) and reloads."""
    if method == "md5":  # md5 needs the password stored as md5
        psql(pg, "SET password_encryption = 'md5'; ALTER ROLE %s PASSWORD '%s'" % (
            pg["TEST_PG_APP_USER"], pg["TEST_PG_APP_PASSWORD"]))
    hba = os.path.join(pg["TEST_PG_DATA"], "pg_hba.conf")
    with open(hba) as f:
        text = f.read()
    text = re.sub(r"^(host\s.*\s)scram-sha-256\s*$", r"\g<1>" + method, text, flags=re.M)
    with open(hba, "w") as f:
        f.write(text)
    psql(pg, "SELECT pg_reload_conf()")
    time.sleep(0.5)


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# ---------------------------------------------------------------------------------------------
# /proc sampling


def proc_cpu_seconds(pid, children=False):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state): utime=14, stime=15, cutime=16, cstime=17 -> index 11..14
    total = int(fields[11]) + int(fields[12])
    if children:
        total += int(fields[13]) + int(fields[14])
    return total / CLK_TCK


def proc_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def machine_busy_seconds():
    """CPU time the whole machine spent not idle (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / CLK_TCK


def child_pids(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def pg_cpu_seconds(postmaster):
    """CPU of the whole cluster: live backends plus everything the postmaster has reaped."""
    total = proc_cpu_seconds(postmaster, children=True)
    for c in child_pids(postmaster):
        try:
            total += proc_cpu_seconds(c)
        except OSError:
            pass
    return total


def pg_tenant_connections(postmaster, user, prefix):
    """Backends of `user` on databases named prefix*, from the process titles."""
    n = 0
    for c in child_pids(postmaster):
        try:
            with open("/proc/%d/cmdline" % c, "rb") as f:
                title = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        parts = title.split()
        if len(parts) >= 3 and parts[0] == "postgres:" and parts[1] == user and parts[2].startswith(prefix):
            n += 1
    return n


class activity_counter:
    """One psql session that counts tenantd's tenant connections in pg_stat_activity."""

    def __init__(self, pg, user, prefix):
        self.sql = ("SELECT count(*) FROM pg_stat_activity WHERE usename = '%s' AND datname LIKE '%s%%';\n"
                    % (user, prefix))
        self.proc = subprocess.Popen(psql_cmd(pg, "postgres"), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1)

    def count(self):
        self.proc.stdin.write(self.sql)
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(10)


class sampler:
    """Samples server RSS and tenantd's tenant connections (process titles and
    pg_stat_activity) every `period` seconds."""

    def __init__(self, pid, postmaster, user, prefix, activity, period=0.2):
        self.pid, self.postmaster, self.user, self.prefix, self.period = pid, postmaster, user, prefix, period
        self.activity = activity
        self.rss_max = 0
        self.conns_max = 0
        self.titles_max = 0
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop_event.is_set():
            try:
                self.rss_max = max(self.rss_max, proc_rss_kib(self.pid))
                self.titles_max = max(self.titles_max, pg_tenant_connections(self.postmaster, self.user, self.prefix))
                self.conns_max = max(self.conns_max, self.activity.count())
            except OSError:
                pass
            self.stop_event.wait(self.period)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        self.thread.join()


# ---------------------------------------------------------------------------------------------
# tenantd


class server:
    def __init__(self, binary, env, workdir):
        self.log_path = os.path.join(workdir, "server-%d.log" % time.time_ns())
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([binary, "serve"], env=env, cwd=workdir, stdout=self.log,
                                     stderr=subprocess.STDOUT, preexec_fn=raise_nofile)
        self.pid = self.proc.pid
        deadline = time.time() + 120
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
        while time.time() < deadline:
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
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def log_tail(self, n=4000):
        return open(self.log_path, errors="replace").read()[-n:]


def create_tenants(port, ids, concurrency, owner=None):
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
            body = {"id": tid, "name": "Bench " + tid}
            if owner and tid == ids[0]:
                body["owner"] = owner
            conn.request("POST", "/tenants", json.dumps(body), {"Content-Type": "application/json"})
            r = conn.getresponse()
            data = r.read()
            if r.status != 201:
                errors.append("%s: %d %s" % (tid, r.status, data[:300]))

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit("tenant creation failed:\n" + "\n".join(errors[:10]))


# ---------------------------------------------------------------------------------------------
# data


def tenant_id(i):
    return "t%04d" % i


def user_uuid(i, n):
    return "%08d-0000-4000-8000-%012d" % (i, n)


def session_uuid(i, n):
    return "%08d-5e55-4000-8000-%012d" % (i, n)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(tid, account, sid, now, lifetime):
    kid = hashlib.sha256(JWT_SECRET.encode()).hexdigest()[:8]
    header = {"alg": "HS256", "typ": "JWT", "kid": kid}
    payload = {"iss": "tenantd", "aud": "tenantd-api", "sub": account, "tenant_id": tid, "role": "member",
               "permissions": MEMBER_PERMISSIONS, "sid": sid, "jti": uuid.uuid4().hex, "iat": now,
               "exp": now + lifetime}
    signing_input = b64url(json.dumps(header, separators=(",", ":")).encode()) + "." + \
        b64url(json.dumps(payload, separators=(",", ":")).encode())
    mac = hmac.new(JWT_SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(mac)


def seed(pg, master_db, tenants, users, accounts_for, password_hash):
    """users rows in every tenant database; accounts, memberships and live sessions in master
    for the first accounts_for(i) users of tenant i."""
    def tenant_script():
        for i in range(tenants):
            yield "\\c %s%s\nCOPY users (id, email, first_name, last_name) FROM STDIN;\n" % (TENANT_PREFIX,
                                                                                           tenant_id(i))
            yield "".join("%s\tu%d@%s.bench.test\tUser%d\tTenant%d\n" % (user_uuid(i, n), n, tenant_id(i), n, i)
                          for n in range(1, users + 1))
            yield "\\.\n"

    psql_stream(pg, "postgres", tenant_script())

    def master_script():
        yield "COPY accounts (id, email, password_hash, first_name, last_name) FROM STDIN;\n"
        for i in range(tenants):
            yield "".join("%s\tu%d@%s.bench.test\t%s\tUser%d\tTenant%d\n" %
                          (user_uuid(i, n), n, tenant_id(i), password_hash, n, i)
                          for n in range(1, accounts_for(i) + 1))
        yield "\\.\nCOPY memberships (tenant_id, account_id, role) FROM STDIN;\n"
        for i in range(tenants):
            yield "".join("%s\t%s\tmember\n" % (tenant_id(i), user_uuid(i, n)) for n in range(1, accounts_for(i) + 1))
        yield "\\.\nCOPY sessions (id, account_id, tenant_id, expires_at) FROM STDIN;\n"
        for i in range(tenants):
            yield "".join("%s\t%s\t%s\t2100-01-01 00:00:00+00\n" % (session_uuid(i, n), user_uuid(i, n), tenant_id(i))
                          for n in range(1, accounts_for(i) + 1))
        yield "\\.\nANALYZE;\n"

    psql_stream(pg, master_db, master_script())


def write_token_lines(path, tenants, accounts, users, rng, lifetime):
    """One line per (tenant, account): a token of its own and a random user of that tenant."""
    now = int(time.time())
    with open(path, "w") as f:
        for i in tenants:
            tid = tenant_id(i)
            for n in range(1, accounts + 1):
                token = mint(tid, user_uuid(i, n), session_uuid(i, n), now, lifetime)
                f.write("%s %s\n" % (token, user_uuid(i, rng.randint(1, users))))


# ---------------------------------------------------------------------------------------------
# load generators


def parse_wrk(text):
    r = {"raw": text}
    m = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    r["rps"] = float(m.group(1)) if m else 0.0
    m = re.search(r"^BENCH requests=(\d+) duration_us=(\d+) status_errors=(\d+) connect=(\d+) read=(\d+) "
                  r"write=(\d+) timeout=(\d+)", text, re.M)
    if not m:
        raise SystemExit("could not parse wrk output:\n" + text[-3000:])
    req, dur, status, conn, read, write, timeout = (int(x) for x in m.groups())
    r["requests"] = req
    r["seconds"] = dur / 1e6
    r["rps"] = req / (dur / 1e6) if dur else 0.0
    r["errors"] = status + conn + read + write + timeout
    r["error_detail"] = "status %d, connect %d, read %d, write %d, timeout %d" % (status, conn, read, write, timeout)
    m = re.search(r"^BENCH latency_us p50=(\d+) p90=(\d+) p99=(\d+) p999=(\d+) max=(\d+)", text, re.M)
    r["p50"], r["p90"], r["p99"], r["p999"], r["max"] = (int(x) / 1000.0 for x in m.groups())
    r["statuses"] = dict((k, int(v)) for k, v in re.findall(r"^BENCH status (\d+)=(\d+)", text, re.M))
    return r


class wrk_run:
    """wrk in the background; result() waits and returns the parsed output plus wrk's CPU."""

    def __init__(self, args, port, script, script_args, conns, seconds):
        cmd = ["wrk", "-t%d" % args.wrk_threads, "-c%d" % conns, "-d%ds" % seconds, "--latency", "--timeout", "5s",
               "-s", os.path.join(WRK_DIR, script), "http://127.0.0.1:%d" % port, "--"] + script_args
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     preexec_fn=raise_nofile)

    def result(self):
        out = self.proc.stdout.read()
        _, status, usage = os.wait4(self.proc.pid, 0)
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        if self.proc.returncode != 0:
            raise SystemExit("wrk failed:\n" + out[-3000:])
        r = parse_wrk(out)
        r["client_cpu"] = usage.ru_utime + usage.ru_stime
        return r


class deferred:
    """A synchronous load (pgbench) in the shape of wrk_run: it runs inside result()."""

    def __init__(self, fn):
        self.fn = fn

    def result(self):
        return self.fn()


def run_pgbench(args, pg, work, db, clients, seconds, connect_each=False, pipeline=0):
    """pipeline > 0: each transaction is that many SELECTs between \\startpipeline and
    \\endpipeline (how a pipelining client feeds PostgreSQL); rps and latencies stay per
    transaction here, the caller multiplies rps by `pipeline` for queries/s."""
    script = os.path.join(work, "select_by_pk_p%d.sql" % pipeline)
    with open(script, "w") as f:
        if pipeline == 0:
            f.write("\\set n random(1, %d)\n%s\n" % (args.users, PGBENCH_SQL))
        else:
            for i in range(pipeline):
                f.write("\\set n%d random(1, %d)\n" % (i, args.users))
            f.write("\\startpipeline\n")
            for i in range(pipeline):
                f.write(PGBENCH_SQL.replace(":n ", ":n%d " % i) + "\n")
            f.write("\\endpipeline\n")
    prefix = os.path.join(work, "pgbench_c%d_%d" % (clients, time.time_ns()))
    env = dict(os.environ, PGPASSWORD=pg["TEST_PG_APP_PASSWORD"])
    # -C connects synchronously per pgbench thread, so it gets one thread per core.
    threads = min(clients, os.cpu_count() or 1) if connect_each else args.wrk_threads
    cmd = [os.path.join(pg["TEST_PG_BIN"], "pgbench"), "-n"] + (["-C"] if connect_each else []) + [
           "-M", "prepared", "-c", str(clients), "-j", str(threads), "-T", str(seconds), "-f", script, "-l",
           "--log-prefix", prefix, "-h", "127.0.0.1", "-p", pg["TEST_PG_PORT"], "-U", pg["TEST_PG_APP_USER"], db]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=work,
                         preexec_fn=raise_nofile)
    out = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise SystemExit("pgbench failed:\n" + out[-3000:])
    m = re.search(r"tps = ([\d.]+) \((?:without initial connection time|including reconnection times)\)", out)
    failed = re.search(r"number of failed transactions: (\d+)", out)
    lat = []
    for name in os.listdir(work):
        if name.startswith(os.path.basename(prefix)):
            with open(os.path.join(work, name)) as f:
                lat.extend(int(line.split()[2]) for line in f if line.strip())
            os.remove(os.path.join(work, name))
    lat.sort()
    pct = lambda p: lat[min(len(lat) - 1, int(p / 100.0 * len(lat)))] / 1000.0 if lat else 0.0
    return {"rps": float(m.group(1)), "requests": len(lat), "p50": pct(50), "p99": pct(99),
            "errors": int(failed.group(1)) if failed else 0, "error_detail": "", "client_cpu":
            usage.ru_utime + usage.ru_stime, "raw": out}


PGBENCH_PIPELINE = 8  # statements per pgbench pipeline in the pipelined ceiling rows


def pipelined_pgbench(args, pg, work, db, clients):
    """run_pgbench with pipelines of PGBENCH_PIPELINE; rps counted in queries, latency per pipeline."""
    r = run_pgbench(args, pg, work, db, clients, args.seconds, pipeline=PGBENCH_PIPELINE)
    r["rps"] *= PGBENCH_PIPELINE
    return r


def argon2_rate(args, seconds):
    out = subprocess.run([args.argon2_bin, str(args.argon2_threads), str(seconds)], check=True, capture_output=True,
                         text=True).stdout
    return float(re.search(r"= ([\d.]+)/s", out).group(1)), out.strip()


# ---------------------------------------------------------------------------------------------
# the run


class bench:
    def __init__(self, args, pg, work):
        self.args, self.pg, self.work = args, pg, work
        with open(os.path.join(pg["TEST_PG_DATA"], "postmaster.pid")) as f:
            self.postmaster = int(f.readline())
        self.srv = None
        self.srv_env = None
        self.activity = activity_counter(pg, pg["TEST_PG_APP_USER"], TENANT_PREFIX)
        self.rows = []  # (label, result dict)

    def start_server(self, extra):
        env = dict(self.base_env)
        env.update(extra)
        if self.srv and self.srv_env == env:
            return
        if self.srv:
            self.srv.stop()
        log("starting tenantd with %s" % " ".join("%s=%s" % kv for kv in sorted(extra.items())))
        self.srv = server(self.args.binary, env, self.work)
        self.srv_env = env

    def db_counters(self):
        """(connections ever opened to tenant databases, transactions in the master database),
        from pg_stat_database (the stats collector lags by up to ~0.5 s)."""
        out = psql(self.pg, "SELECT coalesce(sum(sessions) FILTER (WHERE datname LIKE '%s%%'), 0), "
                            "coalesce(sum(xact_commit + xact_rollback) FILTER (WHERE datname = '%s'), 0) "
                            "FROM pg_stat_database" % (TENANT_PREFIX, MASTER_DB))
        opened, master = out.split("|")
        return int(opened), int(master)

    def measure(self, label, start_load, tenantd=True):
        """Runs start_load() (returns an object with result()), sampling the server and PG."""
        srv = self.srv
        sessions0, master0 = self.db_counters()
        cpu0, pg0, t0 = proc_cpu_seconds(srv.pid), pg_cpu_seconds(self.postmaster), time.monotonic()
        busy0 = machine_busy_seconds()
        load0 = os.getloadavg()[0]
        with sampler(srv.pid, self.postmaster, self.pg["TEST_PG_APP_USER"], TENANT_PREFIX, self.activity) as s:
            runs = start_load()
            results = [r.result() for r in runs] if isinstance(runs, list) else [runs.result()]
        wall = time.monotonic() - t0
        cpu1, pg1 = proc_cpu_seconds(srv.pid), pg_cpu_seconds(self.postmaster)
        busy1 = machine_busy_seconds()
        requests = max(1, sum(x["requests"] for x in results))
        time.sleep(0.6)  # let the statistics arrive
        sessions1, master1 = self.db_counters()
        opened = sessions1 - sessions0
        for r in results:
            r["server_cpu_pct"] = (cpu1 - cpu0) / wall * 100
            r["pg_cpu_pct"] = (pg1 - pg0) / wall * 100
            r["client_cpu_pct"] = r["client_cpu"] / wall * 100
            # Everything else on the machine: other engineers' work, this script, the kernel's.
            ours = (cpu1 - cpu0) + (pg1 - pg0) + sum(x["client_cpu"] for x in results)
            r["other_cpu_pct"] = max(0.0, (busy1 - busy0) - ours) / wall * 100
            r["cpu_us_per_req"] = (cpu1 - cpu0) / requests * 1e6
            r["rss_max_mib"] = s.rss_max / 1024
            if not tenantd:
                del r["server_cpu_pct"]
            if tenantd:
                r["tenant_conns_max"] = s.conns_max
                r["tenant_backends_max"] = s.titles_max
                r["tenant_conns_opened"] = opened
                r["master_per_req"] = (master1 - master0) / requests
            r["load"] = load0
        if srv.proc.poll() is not None:
            raise SystemExit("tenantd died during %s:\n%s" % (label, srv.log_tail()))
        for r in results:
            log("%-28s %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  errors %d  RSS %.0f MiB  server %s%%  PG %.0f%%  "
                "client %.0f%%  other %.0f%%  tenant conns max %s, opened %s  master xacts/req %.3f" % (
                    label, r["rps"], r["p50"], r["p99"], r["errors"], r["rss_max_mib"],
                    "%.0f" % r["server_cpu_pct"] if "server_cpu_pct" in r else "-",
                    r["pg_cpu_pct"], r["client_cpu_pct"], r["other_cpu_pct"],
                    "%s (%s backends)" % (r["tenant_conns_max"], r["tenant_backends_max"]) if tenantd else "-",
                    r.get("tenant_conns_opened", "-"), r.get("master_per_req", 0)))
            if r["errors"]:
                log("  errors: %s %s" % (r["error_detail"], r.get("statuses", "")))
        return results

    def wrk(self, script, script_args, conns, seconds=None):
        return wrk_run(self.args, self.srv.port, script, script_args, conns, seconds or self.args.seconds)

    def repeat(self, label, start_load, tenantd=True):
        runs = [self.measure(label, start_load, tenantd) for _ in range(self.args.repeat)]
        return median_result([r[0] for r in runs]), runs


def median_result(runs):
    if len(runs) == 1:
        return dict(runs[0])
    m = dict(runs[len(runs) // 2])
    for key in ("rps", "p50", "p99", "server_cpu_pct", "pg_cpu_pct", "client_cpu_pct", "other_cpu_pct",
                "cpu_us_per_req", "load"):
        if key in m:
            m[key] = statistics.median(r[key] for r in runs)
    m["errors"] = sum(r["errors"] for r in runs)
    m["rss_max_mib"] = max(r["rss_max_mib"] for r in runs)
    if "tenant_conns_max" in m:
        m["tenant_conns_max"] = max(r["tenant_conns_max"] for r in runs)
        m["tenant_backends_max"] = max(r["tenant_backends_max"] for r in runs)
        m["tenant_conns_opened"] = statistics.median(r["tenant_conns_opened"] for r in runs)
        m["master_per_req"] = statistics.median(r["master_per_req"] for r in runs)
    m["all_rps"] = [r["rps"] for r in runs]
    return m


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
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines()[0].strip()
    return {"nproc": os.cpu_count(), "ram": "%.1f GiB" % (mem_kib / 1024 / 1024), "cpu": cpu, "pg": pg,
            "kernel": platform.release(), "wrk": wrk}


def parse_kv(items):
    out = {}
    for item in items or []:
        k, _, v = item.partition("=")
        out[k] = v
    return out


def main():
    quick = "--quick" in sys.argv
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke test: 3 s runs, 100 tenants for (b), 2,000 idle")
    ap.add_argument("--binary", default=os.path.join(ROOT, "build/release/src/tenantd"))
    ap.add_argument("--argon2-bin", default=os.path.join(ROOT, "build/release/bench/argon2_rate"))
    ap.add_argument("--seconds", type=int, default=int(os.environ.get("BENCH_SECONDS", 3 if quick else 15)),
                    help="duration of each measured run (env BENCH_SECONDS)")
    ap.add_argument("--warmup", type=int, default=1 if quick else 5, help="warm-up seconds before a scenario")
    ap.add_argument("--repeat", type=int, default=int(os.environ.get("BENCH_REPEAT", 1 if quick else 3)),
                    help="runs per measurement, the median is reported (env BENCH_REPEAT)")
    ap.add_argument("--only", default="ceil,a,b,c,d,e", help="comma-separated subset of ceil,a,b,c,d,e")
    ap.add_argument("--tenants", type=int, default=20, help="tenants in (a), (c), (d), (e)")
    ap.add_argument("--tenants-b", type=int, default=100 if quick else 1000, help="tenants in (b)")
    ap.add_argument("--users", type=int, default=1000, help="users per tenant")
    ap.add_argument("--tokens-b", type=int, default=20, help="tokens (accounts) per tenant in (b)")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--login-connections", type=int, default=16)
    ap.add_argument("--idle", type=int, default=2000 if quick else 10000, help="idle connections in (e)")
    ap.add_argument("--budget-b", type=int, default=50, help="TENANT_POOL_MAX_CONNECTIONS in (b)")
    ap.add_argument("--wrk-threads", type=int, default=1, help="wrk -t (also pgbench -j)")
    ap.add_argument("--argon2-threads", type=int, default=os.cpu_count())
    ap.add_argument("--server-env", action="append", metavar="K=V",
                    help="server setting for every scenario (repeatable), e.g. TENANT_POOL_SIZE=2")
    ap.add_argument("--b-env", action="append", metavar="K=V", help="extra server setting for (b) only")
    ap.add_argument("--create-concurrency", type=int, default=2)
    ap.add_argument("--sweep", metavar="CFG;CFG...",
                    help="instead of the scenarios, run (a) under each server configuration (CFG = K=V,K=V), "
                         "interleaved --repeat times, e.g. 'TENANT_POOL_SIZE=2;TENANT_POOL_SIZE=3,THREADS=1'")
    ap.add_argument("--profile", action="store_true",
                    help="after the runs, profile one extra (a) run with perf record -a -g")
    ap.add_argument("--profile-binary", help="binary for the profile run (e.g. built with frame pointers)")
    ap.add_argument("--pg-host-auth", choices=["scram-sha-256", "md5", "trust"], default="scram-sha-256",
                    help="authentication of TCP connections in the private cluster (an experiment: what "
                         "connection set-up costs in (b)); the default is what pg_cluster.sh sets up")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench/results/load-latest.md"))
    args = ap.parse_args()
    args.binary = os.path.abspath(args.binary)
    args.argon2_bin = os.path.abspath(args.argon2_bin)
    if args.profile_binary:
        args.profile_binary = os.path.abspath(args.profile_binary)
    only = set(args.only.split(","))
    if args.tenants > args.tenants_b:
        args.tenants_b = args.tenants
    raise_nofile()

    work = tempfile.mkdtemp(prefix="tenantd-load-")
    pg_dir = os.path.join(work, "pg")
    subprocess.run([os.path.join(ROOT, "tests/support/pg_cluster.sh"), "start", pg_dir], check=True)
    b = None
    started = time.time()
    try:
        pg = read_env(os.path.join(pg_dir, "env"))
        if args.pg_host_auth != "scram-sha-256":
            set_host_auth(pg, args.pg_host_auth)
        master_db = MASTER_DB
        psql(pg, "CREATE DATABASE %s OWNER %s" % (master_db, pg["TEST_PG_APP_USER"]))
        url = "postgresql://%s:%s@%s:%s/%s" % (pg["TEST_PG_APP_USER"], pg["TEST_PG_APP_PASSWORD"],
                                               pg["TEST_PG_HOST"], pg["TEST_PG_PORT"], master_db)
        b = bench(args, pg, work)
        b.base_env = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
        b.base_env.update({"MASTER_DATABASE_URL": url, "JWT_SECRET": JWT_SECRET, "HOST": "127.0.0.1", "PORT": "0",
                           "LOG_LEVEL": "warn", "TENANT_SIGNUP": "open", "TENANT_CREATES_PER_CLIENT": "1000000",
                           "ADMIN_TOKEN": "a" * 40, "TENANT_DB_PREFIX": TENANT_PREFIX,
                           "LOGIN_MAX_FAILURES_PER_CLIENT": "1000000",
                           "LOGIN_SUCCESSES_PER_ACCOUNT": "1000000", "LOGIN_SUCCESSES_PER_CLIENT": "1000000"})
        common_env = parse_kv(args.server_env)
        b_env = dict(common_env)
        b_env["TENANT_POOL_MAX_CONNECTIONS"] = str(args.budget_b)
        b_env.update(parse_kv(args.b_env))
        b.start_server(common_env)
        time.sleep(1)
        idle_fresh = idle_after = proc_rss_kib(b.srv.pid) / 1024
        log("fresh idle RSS %.1f MiB" % idle_fresh)

        # --- data -------------------------------------------------------------------------------
        t = time.monotonic()
        ids = [tenant_id(i) for i in range(args.tenants_b)]
        create_tenants(b.srv.port, ids, args.create_concurrency,
                       owner={"email": "owner@bench.test", "password": PASSWORD, "first_name": "Owner",
                              "last_name": "Bench"})
        password_hash = psql(pg, "SELECT password_hash FROM accounts WHERE email = 'owner@bench.test'", master_db)
        log("%d tenants created in %.1f s" % (len(ids), time.monotonic() - t))
        t = time.monotonic()
        accounts_for = lambda i: args.users if i < args.tenants else args.tokens_b
        seed(pg, master_db, args.tenants_b, args.users, accounts_for, password_hash)
        log("seeded %d users per tenant and %d accounts/sessions in %.1f s" % (
            args.users, sum(accounts_for(i) for i in range(args.tenants_b)), time.monotonic() - t))
        rng = random.Random(42)
        lines_a = os.path.join(work, "tokens_a.txt")
        lines_b = os.path.join(work, "tokens_b.txt")
        lines_login = os.path.join(work, "logins.txt")
        write_token_lines(lines_a, range(args.tenants), args.users, args.users, rng, 6 * 3600)
        write_token_lines(lines_b, range(args.tenants_b), args.tokens_b, args.users, rng, 6 * 3600)
        with open(lines_login, "w") as f:
            for i in range(args.tenants):
                for n in range(1, args.users + 1):
                    f.write("u%d@%s.bench.test %s\n" % (n, tenant_id(i), PASSWORD))
        # Same-run sanity check: one seeded token reads one seeded user.
        token, uid = open(lines_a).readline().split()
        c = http.client.HTTPConnection("127.0.0.1", b.srv.port, timeout=10)
        c.request("GET", "/api/users/" + uid, headers={"Authorization": "Bearer " + token})
        r = c.getresponse()
        body = r.read()
        if r.status != 200:
            raise SystemExit("seeded token rejected: %d %s" % (r.status, body[:300]))

        res = {}
        conns = args.connections
        if args.sweep:
            text = sweep(args, b, common_env, lines_a, started)
            os.makedirs(os.path.dirname(args.out), exist_ok=True)
            with open(args.out, "w") as f:
                f.write(text)
            print()
            print(text)
            return 0
        get_a = lambda secs=None: b.wrk("get_user.lua", [lines_a], conns, secs)
        warm = lambda fn: fn(args.warmup).result()

        # --- ceilings ---------------------------------------------------------------------------
        if "ceil" in only:
            db0 = TENANT_PREFIX + tenant_id(0)
            for clients in sorted({conns, 16}, reverse=True):
                res["pgbench%d" % clients], _ = b.repeat(
                    "pgbench -c%d" % clients, lambda c=clients: deferred(
                        lambda: run_pgbench(args, pg, work, db0, c, args.seconds)), tenantd=False)
            # What PostgreSQL does when fed as a pipelining client feeds it: pipelines of 8.
            for clients in (4, 16):
                r, _ = b.repeat("pgbench pipelines of %d, -c%d" % (PGBENCH_PIPELINE, clients),
                                lambda c=clients: deferred(lambda: pipelined_pgbench(args, pg, work, db0, c)),
                                tenantd=False)
                res["pgbench_pipe%d" % clients] = r
            # The ceiling for (b): a new connection (TCP + SCRAM + backend start) per query.
            res["pgbench_connect"], _ = b.repeat("pgbench -C -c%d" % conns, lambda: deferred(
                lambda: run_pgbench(args, pg, work, db0, conns, args.seconds, connect_each=True)), tenantd=False)
            warm(lambda s: b.wrk("plain.lua", ["/"], conns, s))
            res["root"], _ = b.repeat("GET / (HTTP ceiling)", lambda: b.wrk("plain.lua", ["/"], conns))

        # --- (a) --------------------------------------------------------------------------------
        if only & {"a", "d", "e"}:
            b.start_server(common_env)
            warm(get_a)
            res["a"], _ = b.repeat("a: GET user, %d tenants" % args.tenants, get_a)

        # --- (d) --------------------------------------------------------------------------------
        if "d" in only:
            # The raw rate is measured right before each storm, so both see the same machine.
            warm(lambda s: b.wrk("login.lua", [lines_login], args.login_connections, s))
            runs, rates, alone = [], [], []
            for _ in range(args.repeat):
                rate, text = argon2_rate(args, args.seconds)
                log(text)
                rates.append(rate)
                alone.append(b.measure("d: login storm alone", lambda: b.wrk(
                    "login.lua", [lines_login], args.login_connections))[0])
                runs.append(b.measure("d: GET during login storm", lambda: [
                    get_a(), b.wrk("login.lua", [lines_login], args.login_connections)]))
            res["argon2"] = {"rps": statistics.median(rates), "all": rates}
            res["d_get"] = median_result([r[0] for r in runs])
            res["d_login"] = median_result([r[1] for r in runs])
            res["d_alone"] = median_result(alone)

        # --- (e) --------------------------------------------------------------------------------
        if "e" in only:
            # Each run with the idle connections is paired with an (a) run right before it
            # without them, so the ratio compares like with like on a shared machine.
            paired, held, idle_stats = [], [], []
            for _ in range(args.repeat):
                paired.append(b.measure("e: paired (a), no idle", get_a)[0])
                holder = subprocess.Popen([sys.executable, os.path.join(BENCH, "idle_connections.py"),
                                           "127.0.0.1", str(b.srv.port), str(args.idle)], stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, text=True, preexec_fn=raise_nofile)
                t = time.monotonic()
                ready = holder.stdout.readline().split()
                if not ready or ready[0] != "ready":
                    raise SystemExit("idle connection holder failed: %s" % ready)
                log("%s idle connections open (%s failed) in %.1f s; server RSS %.1f MiB" % (
                    ready[1], ready[2], time.monotonic() - t, proc_rss_kib(b.srv.pid) / 1024))
                held.append(b.measure("e: GET with %s idle" % ready[1], get_a)[0])
                holder.stdin.write("check\n")
                holder.stdin.flush()
                alive = holder.stdout.readline().split()
                idle_stats.append((int(ready[1]), int(ready[2]), int(alive[1]), time.monotonic() - t))
                log("after %.0f s: %s idle connections still answer, %s were closed" % (
                    idle_stats[-1][3], alive[1], alive[3]))
                holder.stdin.write("quit\n")
                holder.stdin.close()
                holder.wait(60)
            res["e"] = median_result(held)
            res["e_paired"] = median_result(paired)
            res["e"]["idle_open"] = min(x[0] for x in idle_stats)
            res["e"]["idle_failed"] = max(x[1] for x in idle_stats)
            res["e"]["idle_alive"] = min(x[2] for x in idle_stats)
            res["e"]["idle_hold_s"] = max(x[3] for x in idle_stats)

        # --- (c) --------------------------------------------------------------------------------
        if "c" in only:
            b.start_server(common_env)
            mix = lambda secs=None: b.wrk("mix.lua", [lines_a, "r%d" % time.time_ns()], conns, secs)
            warm(mix)
            res["c"], _ = b.repeat("c: 80/20 read/write mix", mix)

        # Idle RSS of the server that ran (a), (c), (d), (e), before (b) restarts it; tenantd
        # hands free memory back to the kernel after 5 s without a request in flight.
        time.sleep(8)
        idle_after = proc_rss_kib(b.srv.pid) / 1024
        log("idle RSS after the runs: %.1f MiB (%d open descriptors)" % (
            idle_after, len(os.listdir("/proc/%d/fd" % b.srv.pid))))

        # --- (b) --------------------------------------------------------------------------------
        if "b" in only:
            b.start_server(b_env)
            get_b = lambda secs=None: b.wrk("get_user.lua", [lines_b], conns, secs)
            warm(get_b)
            res["b"], _ = b.repeat("b: GET user, %d tenants" % args.tenants_b, get_b)
            res["b"]["budget"] = args.budget_b

        res["idle"] = {"fresh": idle_fresh, "after": idle_after}

        # --- profile ----------------------------------------------------------------------------
        profile_text = None
        if args.profile:
            profile_text = profile(args, b, common_env, lines_a, conns, work)

        text = report(args, res, b, common_env, b_env, started)
        if profile_text:
            text += "\n" + profile_text
        os.makedirs(os.path.dirname(args.out), exist_ok=True)
        with open(args.out, "w") as f:
            f.write(text)
        print()
        print(text)
    finally:
        if b and b.srv:
            b.srv.stop()
        if b:
            b.activity.close()
        subprocess.run([os.path.join(ROOT, "tests/support/pg_cluster.sh"), "stop", pg_dir])
        shutil.rmtree(work, ignore_errors=True)


def sweep(args, b, common_env, lines_a, started):
    configs = []
    for cfg in args.sweep.split(";"):
        env = dict(common_env)
        env.update(parse_kv([kv for kv in cfg.split(",") if kv]))
        configs.append((cfg or "(defaults)", env))
    results = {name: [] for name, _ in configs}
    get_a = lambda secs=None: b.wrk("get_user.lua", [lines_a], args.connections, secs)
    for _ in range(args.repeat):
        for name, env in configs:
            b.start_server(env)
            get_a(args.warmup).result()
            results[name].append(b.measure("a with %s" % name, get_a)[0])
    lines = ["Sweep of (a) (%d tenants × %d users, %d conns), %s, %d s per run, median of %d interleaved runs:"
             % (args.tenants, args.users, args.connections, time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
                args.seconds, args.repeat), "",
             "| server settings | req/s (each run) | p50 | p99 | errors | server CPU (µs/req) | PG CPU | other CPU | "
             "tenant conns max / opened | load avg |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, _ in configs:
        m = median_result(results[name])
        lines.append("| %s | %.0f (%s) | %.2f ms | %.2f ms | %d | %.0f %% (%.0f) | %.0f %% | %.0f %% | %d / %d | %.1f |"
                     % (
            name, m["rps"], ", ".join("%.0f" % r["rps"] for r in results[name]), m["p50"], m["p99"], m["errors"],
            m["server_cpu_pct"], m["cpu_us_per_req"], m["pg_cpu_pct"], m["other_cpu_pct"], m["tenant_conns_max"],
            m["tenant_conns_opened"], m["load"]))
    return "\n".join(lines) + "\n"


def profile(args, b, env, lines_a, conns, work):
    """One extra (a) run under perf: the whole machine by process (no call graphs), and
    tenantd alone with DWARF call graphs (works on the plain release binary)."""
    if args.profile_binary:
        b.args = argparse.Namespace(**vars(args))
        b.args.binary = args.profile_binary
        b.srv.stop()
        b.srv = None
    b.start_server(env)
    get_a = lambda secs=None: b.wrk("get_user.lua", [lines_a], conns, secs)
    get_a(args.warmup).result()
    system_data = os.path.join(work, "perf-system.data")
    server_data = os.path.join(work, "perf-tenantd.data")
    seconds = str(max(3, args.seconds))
    log("profiling (a) with perf for %s s" % seconds)
    perfs = [
        subprocess.Popen(["perf", "record", "-a", "-F", "499", "-o", system_data, "--", "sleep", seconds],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen(["perf", "record", "-p", str(b.srv.pid), "-F", "999", "--call-graph", "dwarf,16384", "-o",
                          server_data, "--", "sleep", seconds], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    ]
    time.sleep(0.3)
    r = get_a(int(seconds)).result()
    for p in perfs:
        p.wait()
    sections = []

    def perf_report(title, data, extra, limit, keep=lambda line: True):
        cmd = ["perf", "report", "-i", data, "--stdio"] + extra
        out = subprocess.run(cmd, capture_output=True, text=True).stdout
        body = [shorten(l.rstrip()) for l in out.splitlines() if l.strip() and not l.startswith("#")]
        body = [l for l in body if keep(l)]
        body = body[:limit]
        sections.append("%s (`perf report %s`):\n\n```\n%s\n```\n" % (title, " ".join(extra), "\n".join(body)))

    perf_report("Whole machine, CPU by process", system_data, ["--sort", "comm"], 12)
    perf_report("PostgreSQL's hottest symbols", system_data, ["--comms", "postgres", "--sort", "dso,sym"], 15)
    perf_report("tenantd by shared object", server_data, ["--no-children", "-g", "none", "--sort", "dso"], 12)
    perf_report("tenantd, hottest symbols (self time)", server_data, ["--no-children", "-g", "none", "--sort",
                                                                      "dso,sym"], 40)
    perf_report("tenantd, inclusive time of its own functions (tenantd:: symbols only)", server_data,
                ["--children", "-g", "none", "--sort", "sym"], 45, keep=lambda l: "tenantd::" in l)
    if os.environ.get("BENCH_KEEP_PERF"):
        for data in (system_data, server_data):
            shutil.copy(data, os.path.join(ROOT, "bench/results", os.path.basename(data)))
    head = ("### Profile of (a) (%.0f req/s while profiled, %s, load average %.2f)\n\n"
            % (r["rps"], os.path.basename(os.path.dirname(os.path.dirname(b.args.binary))), os.getloadavg()[0]))
    return head + "\n".join(sections)


def shorten(line, width=170):
    """Drops template arguments from a perf line so C++ symbols stay readable."""
    out, depth = [], 0
    line = line.replace("operator<", "operator\x01").replace("operator\x01<", "operator\x01\x01")
    for ch in line:
        if ch == "<":
            depth += 1
            if depth == 1:
                out.append("<…>")
            continue
        if ch == ">" and depth:
            depth -= 1
            continue
        if not depth:
            out.append(ch)
    text = "".join(out).replace("\x01", "<")
    return text if len(text) <= width else text[:width - 1] + "…"


def report(args, res, b, common_env, b_env, started):
    m = machine()
    ok = lambda good: "✅" if good else "❌"
    ms = lambda v: "%.2f ms" % v
    lines = [
        "Measured %s with `bench/run` (release build, private PostgreSQL cluster, fsync on); "
        "%d s per run, median of %d run(s), warm-up %d s; wrk -t%d, load generator on the same machine."
        % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)), args.seconds, args.repeat, args.warmup,
           args.wrk_threads),
        "",
        "Machine: %s cores (`nproc`), %s RAM, %s; %s; Linux %s; %s. Load average at start of each run in "
        "the last column (other engineers were using the machine)." % (
            m["nproc"], m["ram"], m["cpu"], m["pg"], m["kernel"], m["wrk"]),
        "",
        "Server settings: LOG_LEVEL=warn %s; (b): %s. PostgreSQL TCP authentication: %s." % (
            " ".join("%s=%s" % kv for kv in sorted(common_env.items())) or "(defaults)",
            " ".join("%s=%s" % kv for kv in sorted(b_env.items())), args.pg_host_auth),
        "",
        "| run | req/s | p50 | p99 | errors | server RSS max | server CPU (µs/req) | PG CPU | load gen CPU | "
        "other CPU | tenant conns max / opened | master xacts/req | load avg |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def row(label, r):
        if not r:
            return
        cpu = "%.0f %% (%.0f)" % (r["server_cpu_pct"], r["cpu_us_per_req"]) if "server_cpu_pct" in r else "–"
        lines.append("| %s | %.0f | %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            label, r["rps"], ms(r["p50"]), ms(r["p99"]), r["errors"],
            "%.0f MiB" % r["rss_max_mib"] if "rss_max_mib" in r else "–", cpu,
            "%.0f %%" % r["pg_cpu_pct"] if "pg_cpu_pct" in r else "–",
            "%.0f %%" % r["client_cpu_pct"] if "client_cpu_pct" in r else "–",
            "%.0f %%" % r["other_cpu_pct"] if "other_cpu_pct" in r else "–",
            "%d / %d" % (r["tenant_conns_max"], r["tenant_conns_opened"]) if "tenant_conns_max" in r else "–",
            "%.3f" % r["master_per_req"] if "master_per_req" in r else "–",
            "%.1f" % r["load"] if "load" in r else "–"))

    c = args.connections
    row("pgbench SELECT by PK, -M prepared, %d clients" % c, res.get("pgbench%d" % c))
    row("pgbench SELECT by PK, -M prepared, 16 clients", res.get("pgbench16"))
    for pc in (4, 16):
        row("pgbench same SELECT in pipelines of %d (`\\startpipeline`), %d clients (queries/s; latency per pipeline)"
            % (PGBENCH_PIPELINE, pc), res.get("pgbench_pipe%d" % pc))
    row("pgbench same SELECT, a new connection per query (-C), %d clients" % c, res.get("pgbench_connect"))
    row("GET / (HTTP ceiling), %d conns" % c, res.get("root"))
    row("(a) GET /api/users/:id, %d tenants × %d users, %d conns" % (args.tenants, args.users, c), res.get("a"))
    row("(b) same over %d tenants, budget %d" % (args.tenants_b, args.budget_b), res.get("b"))
    row("(c) 80 %% GET / 10 %% POST / 10 %% PUT, %d conns" % c, res.get("c"))
    row("(d) (a) during a login storm", res.get("d_get"))
    row("(d) the login storm, %d conns" % args.login_connections, res.get("d_login"))
    row("(d) the login storm alone (no GET load), %d conns" % args.login_connections, res.get("d_alone"))
    if "e" in res:
        row("(e) (a) without idle conns, paired with each run below", res.get("e_paired"))
        row("(e) (a) with %d idle keep-alive conns" % res["e"]["idle_open"], res.get("e"))
    lines += ["", "| target | measured | |", "|---|---|---|"]

    def target(name, measured, good):
        lines.append("| %s | %s | %s |" % (name, measured, ok(good)))

    a, pgb = res.get("a"), res.get("pgbench%d" % c)
    if a and pgb:
        target("(a) ≥ 1.0× pgbench at %d clients" % c, "%.2f× (%.0f vs %.0f)" % (a["rps"] / pgb["rps"], a["rps"],
                                                                               pgb["rps"]), a["rps"] >= pgb["rps"])
    if a:
        target("(a) p99 ≤ 10 ms, zero errors", "%s, %d errors" % (ms(a["p99"]), a["errors"]),
               a["p99"] <= 10 and a["errors"] == 0)
    if "b" in res:
        bb = res["b"]
        target("(b) ≥ 0.7× (a), tenant connections ≤ %d" % args.budget_b,
               "%s (%.0f), max %d connections in pg_stat_activity (%d backend processes, counting ones "
               "still exiting), %d errors" % ("%.2f×" % (bb["rps"] / a["rps"]) if a else "(a) not run", bb["rps"],
                                             bb["tenant_conns_max"], bb["tenant_backends_max"], bb["errors"]),
               bool(a) and bb["rps"] >= 0.7 * a["rps"] and bb["tenant_conns_max"] <= args.budget_b)
    if a and "d_get" in res:
        d = res["d_get"]
        target("(d) (a)'s p99 ≤ 2× quiet", "%s vs %s quiet (%.1f×)" % (ms(d["p99"]), ms(a["p99"]),
                                                                        d["p99"] / a["p99"]),
               d["p99"] <= 2 * a["p99"])
        lg, raw = res["d_login"], res["argon2"]["rps"]
        target("(d) logins/s ≥ 0.9× raw Argon2id (%d threads, measured before each storm)" % args.argon2_threads,
               "%.1f/s vs %.1f/s raw (%.2f×), %d errors; alone (no GET load) %.1f/s (%.2f×)" % (
                   lg["rps"], raw, lg["rps"] / raw, lg["errors"], res["d_alone"]["rps"], res["d_alone"]["rps"] / raw),
               lg["rps"] >= 0.9 * raw)
    if "e" in res:
        e = res["e"]
        target("(e) RSS ≤ 200 MB with %d idle" % e["idle_open"], "%.0f MiB" % e["rss_max_mib"],
               e["rss_max_mib"] * 1.048576 <= 200)
        pa = res["e_paired"]
        target("(e) throughput ≥ 0.9× (a) without them", "%.2f× (%.0f vs %.0f in paired (a) runs); %d of %d idle "
               "connections still open after %.0f s" % (e["rps"] / pa["rps"], e["rps"], pa["rps"], e["idle_alive"],
                                                       e["idle_open"], e["idle_hold_s"]),
               e["rps"] >= 0.9 * pa["rps"])
    idle = res.get("idle")
    if idle:
        target("idle server RSS ≤ 60 MB", "%.1f MiB fresh, %.1f MiB after the runs" % (idle["fresh"], idle["after"]),
               max(idle["fresh"], idle["after"]) * 1.048576 <= 60)
    lines.append("")
    lines.append("Errors count non-2xx answers and socket errors. Server CPU is % of one core (200 % = both); "
                 "µs/req = server CPU time per request. PG CPU covers every PostgreSQL process of the private "
                 "cluster. Tenant conns max = most connections tenantd held to tenant databases at once "
                 "(pg_stat_activity, sampled every 200 ms); opened = connections opened to tenant databases "
                 "during the run (`pg_stat_database.sessions`; pgbench's own are not counted). Master xacts/req = "
                 "transactions in the "
                 "master database per request (access-cache misses, logins). Other CPU = the rest of the "
                 "machine's busy time (/proc/stat) during the run: other engineers' builds and tests, this script, "
                 "kernel threads; 200 % is both cores. The load average includes this benchmark's own processes. "
                 "Load gen CPU = wrk's (or pgbench's) CPU on the same 2 cores.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
