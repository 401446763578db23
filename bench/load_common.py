"""Shared parts of the load benchmark (bench/load.py): constants, psql, /proc sampling, the
tenantd process, and the data it seeds (tenants, users, sessions, tokens)."""

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


def pg_backend_memory(postmaster, user, prefix):
    """PostgreSQL's memory for the backends of `user` on databases named prefix*: their count,
    the sum of their proportional set sizes (PSS: shared buffers and code split between the
    processes that map them) and of their private memory (what each backend costs on its own),
    from /proc/PID/smaps_rollup."""
    out = {"count": 0, "pss_kib": 0, "private_kib": 0}
    for c in child_pids(postmaster):
        try:
            with open("/proc/%d/cmdline" % c, "rb") as f:
                parts = f.read().replace(b"\0", b" ").decode(errors="replace").split()
            if not (len(parts) >= 3 and parts[0] == "postgres:" and parts[1] == user and parts[2].startswith(prefix)):
                continue
            fields = {}
            with open("/proc/%d/smaps_rollup" % c) as f:
                for line in f:
                    name, _, rest = line.partition(":")
                    if rest.strip().endswith("kB"):
                        fields[name] = int(rest.split()[0])
        except (OSError, ValueError):
            continue
        out["count"] += 1
        out["pss_kib"] += fields.get("Pss", 0)
        out["private_kib"] += fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
    return out


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
