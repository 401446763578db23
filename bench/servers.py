#!/usr/bin/env python3
"""Several database servers benchmark (issue 13), standard library plus wrk.

Starts its own bed (scripts/cluster: PostgreSQL 15 clusters `main` (pg1), `pg2`, `pg3`, three
tenantd processes, HAProxy) with the request quotas off, then (--only picks a subset):
  placement  --tenants tenants created by 4 concurrent clients straight to the three processes,
             no server named: tenants per server (max / min <= 1.02), creation latency p50/p99;
             then `max_tenants` on one server set just above its count and 100 more created by
             4 clients: that server never exceeds it (GET /admin/servers polled meanwhile, and
             a direct count of tenant databases on that cluster). The tenants are deleted
             afterwards (DELETE /admin/tenants/:id, concurrently).
  stop       readers on 3 tenants per server (GET /api/users/:id, through HAProxy); pg3's
             postmaster and all its children get SIGSTOP for --stop-seconds, then SIGCONT.
             Targets: 0 errors on main and pg2; pg3's tenants answer 503 with Retry-After within
             2 s of the stop; pg3 recovered (200s, no error after) within 1 s of SIGCONT.
  routing    wrk (GET /api/users/:id, bench/wrk/get_user.lua) straight to one tenantd process,
             20 tenants all on `main` (A) vs 20 spread over main/pg2/pg3 (B), interleaved
             A,B,A,B...; spread / single req/s >= 0.95.
Prints a Markdown report and writes it to --out. Exit 1 when a target is missed, 2 when the
run could not be made.
"""
import argparse
import concurrent.futures
import http.client
import json
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moves as mv  # noqa: E402 (the bed, the HTTP client, percentiles, machine sampling)
from load_runs import parse_wrk  # noqa: E402

ROOT = mv.ROOT
BED_DEFAULTS = {
    "CLUSTER_DIR": "/var/tmp/tenantd-bench-servers",
    "CLUSTER_HTTPS_PORT": "9543",
    "CLUSTER_HTTP_PORT": "9180",
    "CLUSTER_NODE_PORTS": "9201,9202,9203",
    "CLUSTER_PG_PORTS": "56531,56532,56533",
}
mv.BED_DEFAULTS = BED_DEFAULTS  # mv.bed reads its defaults from there
SERVERS = ["main", "pg2", "pg3"]
PASSWORD = mv.PASSWORD
EMPTY_DB_MB = 7.6  # an empty tenant database, for the disk check (measured again in the run)
RATIO_TARGET = 1.02
FIRST_503_TARGET_S = 2.0
RECOVERY_TARGET_S = 1.0
ROUTING_TARGET = 0.95

log = mv.log
die = mv.die
percentile = mv.percentile
fmt = mv.fmt_ms


def mark(good):
    return "✅" if good else "❌"


class hclient(mv.client):
    """mv.client that also keeps the last answer's Retry-After header."""

    retry_after = None

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
        self.retry_after = r.getheader("Retry-After")
        if r.getheader("Connection", "").lower() == "close":
            self.close()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        return r.status, parsed


def servers_list(b, c):
    body = mv.must(c.request("GET", "/admin/servers", token=b.admin_token), 200, "GET /admin/servers")
    items = body["items"] if isinstance(body, dict) and "items" in body else body
    return {s["name"]: s for s in items}


def db_prefix(b, c, tid):
    body = mv.must(c.request("GET", "/admin/tenants/" + tid, token=b.admin_token), 200, "GET tenant " + tid)
    db = body["database"]
    return db[: len(db) - len(tid)] if db.endswith(tid) else "tenant_"


def sql_tenant_dbs(b, server, prefix):
    """Tenant databases on the cluster itself (pg_database), the template excluded."""
    return int(b.psql(server, "postgres",
                      "SELECT count(*) FROM pg_database WHERE left(datname, %d) = '%s' AND NOT datistemplate "
                      "AND datname NOT LIKE '%%template%%'" % (len(prefix), prefix)))


def free_gb(path="/var/tmp"):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize / 1e9


# ---------------------------------------------------------------------------------------------
# placement


def create_many(b, ids, clients, out, limit=None, nxt=None):
    """POST /tenants (no server, no owner) for ids by `clients` threads straight to the three
    processes (client k -> process k % 3). out: list of (tid, t_start, latency_ms, status, body).
    limit: a one-element list; the threads stop taking ids at index limit[0]."""
    lock = threading.Lock()
    nxt = [0] if nxt is None else nxt  # the next index, shared with an earlier call

    def worker(k):
        c = hclient(b, b.node_ports[k % len(b.node_ports)], timeout=120)
        while True:
            with lock:
                i = nxt[0]
                if i >= len(ids) or (limit is not None and i >= limit[0]):
                    break
                nxt[0] += 1
            tid = ids[i]
            t = time.monotonic()
            try:
                st, body = c.request("POST", "/tenants", {"id": tid, "name": "Servers bench " + tid}, b.admin_token,
                                     retry_stale=False)
            except (OSError, http.client.HTTPException) as e:
                st, body = None, "%s: %s" % (type(e).__name__, e)
            lat = (time.monotonic() - t) * 1000
            with lock:
                out.append((tid, t, lat, st, body))
        c.close()

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(clients)]
    for th in threads:
        th.start()
    return threads


def delete_many(b, ids, clients):
    lock = threading.Lock()
    it = iter(list(ids))
    res = {"ok": 0, "bad": []}

    def worker(k):
        c = hclient(b, b.node_ports[k % len(b.node_ports)], timeout=120)
        while True:
            with lock:
                tid = next(it, None)
            if tid is None:
                break
            try:
                st, body = c.request("DELETE", "/admin/tenants/" + tid, token=b.admin_token, retry_stale=True)
            except (OSError, http.client.HTTPException) as e:
                st, body = None, str(e)
            with lock:
                if st == 200:
                    res["ok"] += 1
                else:
                    res["bad"].append((tid, st, str(body)[:200]))
        c.close()

    t = time.monotonic()
    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    res["seconds"] = time.monotonic() - t
    return res


class servers_poller(threading.Thread):
    """GET /admin/servers in a loop (its own connection), and the cluster's own count of tenant
    databases via psql (slower), during the capped phase: the highest counts seen."""

    def __init__(self, b, server, prefix, stop):
        super().__init__(daemon=True)
        self.b, self.server, self.prefix, self.stop_event = b, server, prefix, stop
        self.api_max = 0
        self.api_polls = 0
        self.sql_max = 0
        self.sql_polls = 0
        self.errors = []

    def run(self):
        c = hclient(self.b, self.b.node_ports[0])
        sql_thread = threading.Thread(target=self.sql_loop, daemon=True)
        sql_thread.start()
        while not self.stop_event.is_set():
            try:
                s = servers_list(self.b, c)[self.server]
                self.api_max = max(self.api_max, s["tenants"])
                self.api_polls += 1
            except (OSError, http.client.HTTPException, SystemExit, KeyError) as e:
                self.errors.append(str(e))
            time.sleep(0.02)
        sql_thread.join()
        c.close()

    def sql_loop(self):
        while not self.stop_event.is_set():
            try:
                self.sql_max = max(self.sql_max, sql_tenant_dbs(self.b, self.server, self.prefix))
                self.sql_polls += 1
            except RuntimeError as e:
                self.errors.append(str(e))
            time.sleep(0.1)


def phase_placement(b, args, run_id, R):
    admin = hclient(b, b.node_ports[0])
    before = servers_list(b, admin)
    base = {n: before[n]["tenants"] for n in SERVERS}
    disk_before = free_gb()
    want = args.tenants
    need_gb = (want + args.capped_extra) * EMPTY_DB_MB * 1.15 / 1000 + 5
    note = []
    if need_gb > disk_before:
        fit = int(max(0, disk_before - 5) * 1000 / (EMPTY_DB_MB * 1.15)) - args.capped_extra
        note.append("only %.1f GB free in /var/tmp: %d tenants instead of %d" % (disk_before, fit, want))
        log(note[-1])
        want = max(30, fit)
    ids = ["pl%s_%05d" % (run_id, i + 1) for i in range(want)]
    log("placement: creating %d tenants, 4 clients straight to the 3 processes (%.1f GB free)" % (want, disk_before))
    out = []
    limit = [min(100, want)]
    nxt = [0]
    t0 = time.monotonic()
    threads = create_many(b, ids, args.clients, out, limit, nxt)
    for th in threads:
        th.join()
    first = time.monotonic() - t0
    rate = len(out) / first
    est = want / rate
    log("first %d in %.1f s (%.1f/s): %d would take ~%.0f s" % (len(out), first, rate, want, est))
    if est > args.max_create_s:
        n = max(limit[0], int(rate * args.max_create_s))
        note.append("the first %d tenants took %.1f s (%.1f/s): %d would take ~%.0f s, over --max-create-s %.0f; "
                    "created %d instead" % (limit[0], first, rate, want, est, args.max_create_s, n))
        log(note[-1])
        want = n
    limit[0] = want
    threads = create_many(b, ids, args.clients, out, limit, nxt)
    last_log = time.monotonic()
    while any(th.is_alive() for th in threads):
        time.sleep(1)
        if time.monotonic() - last_log > 15:
            last_log = time.monotonic()
            log("  %d/%d created (%.1f/s)" % (len(out), want, len(out) / (time.monotonic() - t0)))
    wall = time.monotonic() - t0
    created = [x for x in out if x[3] == 201]
    failed = [x for x in out if x[3] != 201]
    after = servers_list(b, admin)
    counts = {n: after[n]["tenants"] - base[n] for n in SERVERS}
    lat = [x[2] for x in created]
    ratio = (max(counts.values()) / min(counts.values())) if min(counts.values()) > 0 else float("inf")
    log("placement: %d created, %d failed in %.1f s; per server %s; max/min %.4f; p50 %.0f ms p99 %.0f ms" % (
        len(created), len(failed), wall, counts, ratio, percentile(lat, 50) or 0, percentile(lat, 99) or 0))
    prefix = db_prefix(b, admin, created[0][0]) if created else "tenant_"
    sql_counts = {n: sql_tenant_dbs(b, n, prefix) for n in SERVERS}
    # size of an empty tenant database (for the record)
    try:
        one = created[0][0]
        srv = mv.must(admin.request("GET", "/admin/tenants/" + one, token=b.admin_token), 200, "GET tenant")
        size_mb = int(b.psql(srv.get("server") or "main", "postgres",
                             "SELECT pg_database_size('%s')" % srv["database"])) / 1048576
    except (RuntimeError, SystemExit, KeyError, IndexError):
        size_mb = None

    # -- capped phase --
    capped = args.capped_server
    cur = after[capped]["tenants"]
    cap = cur + args.cap_headroom
    st, body = admin.request("PUT", "/admin/servers/" + capped, {"max_tenants": cap}, b.admin_token, retry_stale=True)
    if st != 200:
        die("PUT /admin/servers/%s max_tenants: HTTP %d %s" % (capped, st, body))
    log("capped: %s has %d tenants, max_tenants set to %d; creating %d more" % (capped, cur, cap, args.capped_extra))
    before2 = servers_list(b, admin)
    ids2 = ["pc%s_%05d" % (run_id, i + 1) for i in range(args.capped_extra)]
    out2 = []
    stop = threading.Event()
    poller = servers_poller(b, capped, prefix, stop)
    poller.start()
    time.sleep(0.3)
    t1 = time.monotonic()
    threads = create_many(b, ids2, args.clients, out2)
    for th in threads:
        th.join()
    wall2 = time.monotonic() - t1
    time.sleep(0.3)
    stop.set()
    poller.join()
    after2 = servers_list(b, admin)
    counts2 = {n: after2[n]["tenants"] - before2[n]["tenants"] for n in SERVERS}
    final_api = after2[capped]["tenants"]
    final_sql = sql_tenant_dbs(b, capped, prefix)
    created2 = [x for x in out2 if x[3] == 201]
    failed2 = [x for x in out2 if x[3] != 201]
    lat2 = [x[2] for x in created2]
    log("capped: %d created, %d failed in %.1f s; new per server %s; %s: api %d (max seen %d over %d polls), "
        "sql %d (max seen %d over %d polls), cap %d" % (
            len(created2), len(failed2), wall2, counts2, capped, final_api, poller.api_max, poller.api_polls,
            final_sql, poller.sql_max, poller.sql_polls, cap))
    st, _ = admin.request("PUT", "/admin/servers/" + capped, {"max_tenants": None}, b.admin_token, retry_stale=True)
    if st != 200:
        log("warning: clearing max_tenants on %s: HTTP %s" % (capped, st))

    # -- cleanup --
    deleted = None
    if not args.keep_tenants:
        all_ids = [x[0] for x in created + created2]
        log("deleting %d tenants, %d clients" % (len(all_ids), args.delete_clients))
        deleted = delete_many(b, all_ids, args.delete_clients)
        log("deleted %d in %.1f s (%d failed)" % (deleted["ok"], deleted["seconds"], len(deleted["bad"])))
    admin.close()

    R["placement"] = dict(
        asked=args.tenants, want=want, note=note, disk_before=disk_before, wall=wall, created=len(created),
        failed=failed, counts=counts, sql_counts=sql_counts, ratio=ratio, p50=percentile(lat, 50),
        p99=percentile(lat, 99), lat_max=max(lat) if lat else None, rate_first=rate, size_mb=size_mb,
        capped=capped, cap=cap, cap_before=cur, extra=args.capped_extra, created2=len(created2), failed2=failed2,
        counts2=counts2, wall2=wall2, p50_2=percentile(lat2, 50), p99_2=percentile(lat2, 99), final_api=final_api,
        final_sql=final_sql, api_max=poller.api_max, api_polls=poller.api_polls, sql_max=poller.sql_max,
        sql_polls=poller.sql_polls, poll_errors=poller.errors[:5], deleted=deleted, prefix=prefix,
        disk_after=free_gb())
    P = R["placement"]
    never = max(P["api_max"], P["sql_max"], final_api, final_sql) <= cap
    R["checks"].append(("placement: tenants created (no server named, %d clients)" % args.clients,
                        "%d of %d, no failure" % (want, want), "%d created, %d failed" % (len(created), len(failed)),
                        len(created) == want and not failed))
    R["checks"].append(("placement: max ÷ min tenants per server", "≤ %.2f" % RATIO_TARGET, "%.4f (%s)" % (
        ratio, ", ".join("%s %d" % (n, counts[n]) for n in SERVERS)), ratio <= RATIO_TARGET))
    R["checks"].append(("max_tenants on %s (%d) never exceeded" % (capped, cap), "never",
                        "highest seen: API %d (%d polls), SQL %d (%d polls); final API %d, SQL %d" % (
                            P["api_max"], P["api_polls"], P["sql_max"], P["sql_polls"], final_api, final_sql), never))
    R["checks"].append(("%s: GET /admin/servers count = tenant databases on the cluster" % capped, "equal",
                        "%d / %d" % (final_api, final_sql), final_api == final_sql))
    R["checks"].append(("capped phase: the %d tenants created (room left on the others)" % args.capped_extra,
                        "%d, no failure" % args.capped_extra, "%d created, %d failed" % (len(created2), len(failed2)),
                        len(created2) == args.capped_extra))


# ---------------------------------------------------------------------------------------------
# a server stopped


def pg_pids(b, n):
    with open(os.path.join(b.dir, "pg%d" % n, "data", "postmaster.pid")) as f:
        pm = int(f.readline().strip())
    kids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        if ppid == pm:
            kids.append(int(pid))
    return pm, kids


def setup_tenant(b, tid, server, users):
    admin = hclient(b)
    email = mv.create_tenant(b, admin, tid, server)
    token = mv.login(b, tid, email)
    ids = []
    for n in range(users):
        body = mv.must(admin.request("POST", "/api/users", {"email": "u%d@%s.example.com" % (n, tid.replace("_", "-")),
                                                           "first_name": "Reader", "last_name": "N%d" % n}, token),
                       201, "user in " + tid)
        ids.append(body["id"])
    admin.close()
    return tid, server, token, ids


def setup_tenants(b, specs, users, workers=3):
    with concurrent.futures.ThreadPoolExecutor(workers) as ex:
        return list(ex.map(lambda s: setup_tenant(b, s[0], s[1], users), specs))


class stop_reader(threading.Thread):
    """Paced GET /api/users/:id on one tenant; every answer with send/receive time, status and
    Retry-After."""

    def __init__(self, b, tid, server, token, ids, rate, stop, direct_port, timeout):
        super().__init__(daemon=True)
        self.tid, self.server, self.token, self.ids, self.interval = tid, server, token, ids, 1.0 / rate
        self.stop_event = stop
        self.c = hclient(b, direct_port, timeout=timeout)
        self.rec = []  # (t_send, t_recv, status or exception name, retry_after, body)

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
                st, body = self.c.request("GET", "/api/users/" + uid, token=self.token)
                ra = self.c.retry_after
                if st == 200 and not (isinstance(body, dict) and body.get("id") == uid):
                    st = "200-wrong-body"
            except (OSError, http.client.HTTPException) as e:
                st, body, ra = type(e).__name__, str(e), None
            self.rec.append((sent, time.monotonic(), st, ra, body if st != 200 else None))
        self.c.close()


def offsets(b):
    out = []
    for path in b.node_logs():
        try:
            out.append(os.path.getsize(path))
        except OSError:
            out.append(0)
    return out


def stop_cycle(b, seconds, after):
    """SIGSTOP pg3's postmaster and all its children, wait, SIGCONT, wait `after`."""
    log_offsets = offsets(b)
    pm, _ = pg_pids(b, 3)
    t_stop = time.monotonic()
    os.kill(pm, signal.SIGSTOP)  # first: it forks no new child meanwhile
    _, kids = pg_pids(b, 3)
    for p in kids:
        try:
            os.kill(p, signal.SIGSTOP)
        except ProcessLookupError:
            pass
    t_stopped = time.monotonic()
    log("stop: SIGSTOP to pg3's postmaster %d and its %d children (%.1f ms)" % (pm, len(kids),
                                                                               (t_stopped - t_stop) * 1000))
    time.sleep(seconds)
    t_cont = time.monotonic()
    for p in kids:
        try:
            os.kill(p, signal.SIGCONT)
        except ProcessLookupError:
            pass
    os.kill(pm, signal.SIGCONT)
    log("stop: SIGCONT after %.2f s; %.0f s more of load" % (t_cont - t_stop, after))
    time.sleep(after)
    t_end = time.monotonic()
    lines, count = mv.log_lines_about(b, [], log_offsets, limit=15)
    return dict(t_stop=t_stop, t_cont=t_cont, t_end=t_end, pm=pm, children=len(kids),
                t_stop_ms=(t_stopped - t_stop) * 1000, seconds=t_cont - t_stop, log_lines=lines, log_count=count)


def analyze(readers, t_begin, c, t_end):
    """Answers received in [t_begin, t_end) around one stop cycle, per server."""
    t_stop, t_cont = c["t_stop"], c["t_cont"]
    S = {"t_stop_ms": c["t_stop_ms"], "children": c["children"], "pm": c["pm"], "seconds": c["seconds"],
         "log_lines": c["log_lines"], "log_count": c["log_count"], "per": {}}
    for s in SERVERS:
        rec = sorted((x for r in readers if r.server == s for x in r.rec if t_begin <= x[1] < t_end),
                     key=lambda x: x[1])
        d = {}
        for label, a, z in (("before", t_begin, t_stop), ("stopped", t_stop, t_cont), ("after", t_cont, t_end)):
            part = [x for x in rec if a <= x[1] < z]  # by time of the answer
            d[label] = {"ok": sum(1 for x in part if x[2] == 200),
                        "503": sum(1 for x in part if x[2] == 503),
                        "other": sum(1 for x in part if x[2] not in (200, 503))}
        sent_before = [(x[1] - x[0]) * 1000 for x in rec if x[0] < t_stop and x[1] < t_stop]
        sent_during = [(x[1] - x[0]) * 1000 for x in rec if t_stop <= x[0] < t_cont]
        d["p99_before"] = percentile(sent_before, 99)
        d["p50_before"] = percentile(sent_before, 50)
        d["p99_during"] = percentile(sent_during, 99)
        d["p50_during"] = percentile(sent_during, 50)
        d["max_during"] = max(sent_during) if sent_during else None
        errs = [x for x in rec if x[2] != 200]
        d["errors"] = errs
        d["errors_total"] = len(errs)
        d["errors_not_503_ra"] = [x for x in errs if not (x[2] == 503 and x[3])]
        first503 = next((x for x in rec if x[2] == 503 and x[1] >= t_stop), None)
        d["first_503_s"] = (first503[1] - t_stop) if first503 else None
        first200 = next((x for x in rec if x[2] == 200 and x[1] >= t_cont), None)
        d["first_200_after_cont_s"] = (first200[1] - t_cont) if first200 else None
        d["errors_after_first_200"] = sum(1 for x in errs if first200 and x[1] > first200[1])
        last_err = max((x[1] for x in errs if x[1] >= t_stop), default=None)
        if last_err is None:
            d["recovered_s"] = 0.0 if s != "pg3" else d["first_200_after_cont_s"]
        else:
            nxt200 = next((x for x in rec if x[2] == 200 and x[1] > last_err), None)
            d["recovered_s"] = (nxt200[1] - t_cont) if nxt200 else None
        d["max_wait_sent_during"] = max(((x[1] - x[0]) for x in rec if t_stop <= x[0] < t_cont), default=None)
        d["kinds"] = {}
        for x in errs:
            key = "%s%s" % (x[2], " Retry-After: %s" % x[3] if x[3] else " (no Retry-After)")
            d["kinds"][key] = d["kinds"].get(key, 0) + 1
        sent_stopped = [x for x in rec if t_stop <= x[0] < t_cont]
        d["sent_stopped"] = len(sent_stopped)
        d["sent_stopped_200_after_cont"] = sum(1 for x in sent_stopped if x[2] == 200 and x[1] >= t_cont)
        d["samples"] = [(x[0] - t_stop, x[1] - t_stop, x[2], x[3], str(x[4])[:160]) for x in errs[:4]]
        S["per"][s] = d
        log("stop %.0f s: %s before %s stopped %s after %s; p99 before %s during %s ms; first 503 %s s; "
            "recovered %s s" % (c["seconds"], s, d["before"], d["stopped"], d["after"], fmt(d["p99_before"]),
                                fmt(d["p99_during"]), fmt(d["first_503_s"], 2), fmt(d["recovered_s"], 2)))
    return S


def phase_stop(b, args, run_id, R):
    specs = [("st%s_%s_%d" % (run_id, s, k + 1), s) for s in SERVERS for k in range(args.stop_tenants)]
    log("stop: creating %d tenants (%d per server) with %d users each" % (len(specs), args.stop_tenants, 10))
    tenants = setup_tenants(b, specs, 10)
    direct = b.node_ports if args.stop_direct else None
    stop = threading.Event()
    readers = []
    k = 0
    for tid, server, token, ids in tenants:
        for _ in range(args.stop_threads):
            readers.append(stop_reader(b, tid, server, token, ids, args.stop_rate, stop,
                                       None if direct is None else direct[k % 3], timeout=30))
            k += 1
    for r in readers:
        r.start()
    log("stop: %d readers at %.0f req/s each; %.0f s before the stop" % (len(readers), args.stop_rate, args.stop_before))
    time.sleep(args.stop_before)
    t_begin = time.monotonic() - args.stop_before - 1
    c1 = stop_cycle(b, args.stop_seconds, args.stop_after)
    c2 = stop_cycle(b, args.stop_long_seconds, args.stop_after) if args.stop_long_seconds > 0 else None
    stop.set()
    for r in readers:
        r.join(60)
    S = analyze(readers, t_begin, c1, c2["t_stop"] if c2 else time.monotonic() + 1)
    S.update(readers=len(readers), tenants=[(t[0], t[1]) for t in tenants])
    if c2:
        # "before" of the long stop: from 1 s after the first SIGCONT on
        S["long"] = analyze(readers, c1["t_cont"] + 1.0, c2, time.monotonic() + 1)
    R["stop"] = S
    others_err = sum(X["per"][s]["errors_total"] for X in (S, S.get("long")) if X for s in ("main", "pg2"))
    p3 = S["per"]["pg3"]
    R["checks"].append(("stop: errors on the tenants of main and pg2 (%s)" % (
        "both stops" if S.get("long") else "whole phase"), "0", str(others_err),
                        others_err == 0))
    R["checks"].append(("stop: first 503 from pg3's tenants after SIGSTOP", "≤ %.0f s" % FIRST_503_TARGET_S,
                        "%s s" % fmt(p3["first_503_s"], 2),
                        p3["first_503_s"] is not None and p3["first_503_s"] <= FIRST_503_TARGET_S))
    R["checks"].append(("stop: every failure on pg3's tenants a 503 with Retry-After", "all",
                        "%d of %d" % (p3["errors_total"] - len(p3["errors_not_503_ra"]), p3["errors_total"]),
                        p3["errors_total"] > 0 and not p3["errors_not_503_ra"]))
    R["checks"].append(("stop: pg3's tenants recovered after SIGCONT (first 200 after the last error)",
                        "≤ %.0f s" % RECOVERY_TARGET_S, "%s s (first 200 after SIGCONT: %s s; errors after it: %d)" % (
                            fmt(p3["recovered_s"], 2), fmt(p3["first_200_after_cont_s"], 2),
                            p3["errors_after_first_200"]),
                        p3["recovered_s"] is not None and p3["recovered_s"] <= RECOVERY_TARGET_S))


# ---------------------------------------------------------------------------------------------
# routing cost


def run_wrk(port, lines, conns, seconds, threads):
    cmd = ["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % seconds, "--latency", "--timeout", "5s",
           "-s", os.path.join(ROOT, "bench", "wrk", "get_user.lua"), "http://127.0.0.1:%s" % port, "--", lines]
    p = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, BENCH_STATUS="1"))
    if p.returncode != 0:
        die("wrk failed: " + (p.stdout + p.stderr)[-2000:])
    return parse_wrk(p.stdout)


def cpu_seconds(pid):
    """utime + stime of a process, in seconds (/proc/<pid>/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def phase_routing(b, args, run_id, R, work):
    n = args.routing_tenants
    specs_a = [("ra%s_%02d" % (run_id, i + 1), "main") for i in range(n)]
    specs_b = [("rb%s_%02d" % (run_id, i + 1), SERVERS[i % 3]) for i in range(n)]
    log("routing: creating %d + %d tenants (single: all on main; spread: main/pg2/pg3) with %d users each" % (
        n, n, args.routing_users))
    ta = setup_tenants(b, specs_a, args.routing_users)
    tb = setup_tenants(b, specs_b, args.routing_users)
    files = {}
    for label, ts in (("single", ta), ("spread", tb)):
        path = os.path.join(work, label + ".lines")
        with open(path, "w") as f:
            for tid, server, token, ids in ts:
                for uid in ids:
                    f.write("%s %s\n" % (token, uid))
        files[label] = path
    port = b.node_ports[0]
    pid = b.node_pids()[0]  # the tenantd process wrk talks to: its CPU per request is the routing's own cost
    log("routing: warm-up %d s each" % args.routing_warmup)
    for label in ("single", "spread"):
        run_wrk(port, files[label], args.routing_connections, args.routing_warmup, args.wrk_threads)
    runs = {"single": [], "spread": []}
    order = []
    for i in range(args.routing_repeats):
        pair = ("spread", "single") if args.routing_alternate_order and i % 2 else ("single", "spread")
        for label in pair:
            cpu_before = cpu_seconds(pid)
            r = run_wrk(port, files[label], args.routing_connections, args.routing_seconds, args.wrk_threads)
            requests = r["rps"] * args.routing_seconds
            r["us_per_req"] = (cpu_seconds(pid) - cpu_before) / requests * 1e6 if requests else 0.0
            r["load1"] = mv.loadavg()[0]
            r["compilers"] = mv.compiler_processes()
            runs[label].append(r)
            order.append(label)
            log("routing %d %s: %.0f req/s, p50 %.2f ms, p99 %.2f ms, tenantd %.1f µs/req, errors %d, statuses %s, "
                "load %.2f" % (i + 1, label, r["rps"], r["p50"], r["p99"], r["us_per_req"], r["errors"], r["statuses"],
                               r["load1"]))
    med = {k: statistics.median(r["rps"] for r in v) for k, v in runs.items()}
    ratio = med["spread"] / med["single"] if med["single"] else 0.0
    pair_ratios = [b_["rps"] / a_["rps"] for a_, b_ in zip(runs["single"], runs["spread"]) if a_["rps"]]
    errors = sum(r["errors"] for v in runs.values() for r in v)
    non200 = sum(c for v in runs.values() for r in v for code, c in r["statuses"].items() if code != "200")
    cpu = {k: statistics.median(r["us_per_req"] for r in v) for k, v in runs.items()}
    cpu_ratio = cpu["spread"] / cpu["single"] if cpu["single"] else 0.0
    R["routing"] = dict(runs=runs, med=med, ratio=ratio, pair_ratios=pair_ratios, order=order, port=port,
                        errors=errors, non200=non200, cpu=cpu, cpu_ratio=cpu_ratio)
    R["checks"].append(("routing: req/s spread ÷ single (medians of %d runs each)" % args.routing_repeats,
                        "≥ %.2f" % ROUTING_TARGET, "%.3f (%.0f / %.0f)" % (ratio, med["spread"], med["single"]),
                        ratio >= ROUTING_TARGET))
    R["checks"].append(("routing: tenantd CPU per request, spread ÷ single (medians; for information)", "–",
                        "%.3f (%.1f / %.1f µs)" % (cpu_ratio, cpu["spread"], cpu["single"]), True))
    R["checks"].append(("routing: errors and non-200 answers", "0", "%d / %d" % (errors, non200),
                        errors == 0 and non200 == 0))


# ---------------------------------------------------------------------------------------------
# report


def stop_table(L, S):
    """The per-server table of one stop cycle, its notes and the processes' log lines."""
    L.append("| server | before: ok / 503 / other | stopped: ok / 503 / other | after SIGCONT: ok / 503 / other | "
             "p50 / p99 before, ms | p50 / p99 during, ms | max during, ms | first 503 after SIGSTOP, s | "
             "first 200 after SIGCONT, s | recovered (200 after the last error), s |")
    L.append("|---|---|---|---|---|---|---|---|---|---|")
    for s in SERVERS:
        d = S["per"][s]

        def trio(x):
            return "%d / %d / %d" % (x["ok"], x["503"], x["other"])

        L.append("| %s | %s | %s | %s | %s / %s | %s / %s | %s | %s | %s | %s |" % (
            s, trio(d["before"]), trio(d["stopped"]), trio(d["after"]), fmt(d["p50_before"]),
            fmt(d["p99_before"]), fmt(d["p50_during"]), fmt(d["p99_during"]), fmt(d["max_during"], 0),
            fmt(d["first_503_s"], 2), fmt(d["first_200_after_cont_s"], 2) if s == "pg3" else "–",
            fmt(d["recovered_s"], 2) if s == "pg3" else "–"))
    L.append("")
    d = S["per"]["pg3"]
    L.append("Requests to pg3's tenants sent while it was stopped: %d; of them answered 200 only after SIGCONT: "
             "%d; the longest wait for an answer: %s ms." % (d["sent_stopped"], d["sent_stopped_200_after_cont"],
                                                            fmt(d["max_wait_sent_during"] * 1000
                                                                if d["max_wait_sent_during"] is not None else None,
                                                                0)))
    L.append("")
    kinds = False
    for s in SERVERS:
        d = S["per"][s]
        if d["kinds"]:
            L.append("- %s: failures by kind: %s; errors after pg3's first 200 after SIGCONT: %d; first ones "
                     "(sent / answered, s after SIGSTOP): %s" % (
                         s, ", ".join("%s × %d" % (k, v) for k, v in d["kinds"].items()),
                         d["errors_after_first_200"],
                         "; ".join("%+.2f / %+.2f %s `%s`" % (a, z, st, body) for a, z, st, ra, body in
                                   d["samples"])))
            kinds = True
    if kinds:
        L.append("")
    if S["log_count"]:
        L.append("Warnings and errors in the processes' logs from the stop on (%d lines, first %d):" % (
            S["log_count"], len(S["log_lines"])))
        L.append("")
        L.append("```")
        L.extend(S["log_lines"])
        L.append("```")
    else:
        L.append("The processes logged no warning or error from the stop on.")
    L.append("")


def report(b, args, R, started_wall, load_start, load_end, compilers_start, sampler):
    L = []
    L.append("# Several database servers: placement, a stopped server, routing cost (issue 13)")
    L.append("")
    L.append("Generated by `bench/run-servers` (bench/servers.py) on %s. Every figure below comes from this run." %
             started_wall)
    L.append("")
    L.append("## Machine and bed")
    L.append("")
    L.append("| | |")
    L.append("|---|---|")
    L.append("| machine | %s, %d cores (nproc), %s, Python %s |" % (platform.machine(), os.cpu_count(),
                                                                   platform.platform(), platform.python_version()))
    L.append("| load average at start (1/5/15 min) | %.2f / %.2f / %.2f |" % tuple(load_start))
    L.append("| load average at end | %.2f / %.2f / %.2f |" % tuple(load_end))
    L.append("| highest 1-min load average during the run | %.2f |" % sampler.load1_max)
    L.append("| other build processes (cc1plus, ld, …) | %d at start; up to %d, present in %d of %d samples (every 5 s) |"
             % (compilers_start, sampler.compilers_max, sampler.samples_with_compilers, sampler.samples))
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
    L.append("| bed | scripts/cluster in `%s`: 3 × PostgreSQL 15 (main = pg1, pg2, pg3), 3 × tenantd (release), "
             "HAProxy (HTTPS :%d) |" % (b.dir, b.https_port))
    L.append("| processes' quotas | TENANT_REQUESTS_PER_SECOND=%s, SESSION_REQUESTS_PER_SECOND=%s, "
             "TENANT_CREATES_PER_CLIENT=%s, LOGIN_SUCCESSES_PER_CLIENT=%s |" % tuple(
                 b.node_setting(k) for k in ("TENANT_REQUESTS_PER_SECOND", "SESSION_REQUESTS_PER_SECOND",
                                             "TENANT_CREATES_PER_CLIENT", "LOGIN_SUCCESSES_PER_CLIENT")))
    L.append("| phases run | %s |" % ", ".join(args.only))
    L.append("")
    if sampler.load1_max > os.cpu_count() or compilers_start or sampler.compilers_max:
        L.append("> Other load was present: the 1-min load average reached %.2f on %d cores, and build processes "
                 "were running at %d of %d samples. The bed, the load generators and everything else share those "
                 "cores, so latencies and req/s include CPU contention." % (
                     sampler.load1_max, os.cpu_count(), sampler.samples_with_compilers, sampler.samples))
        L.append("")
    L.append("## Targets")
    L.append("")
    L.append("| | target | measured | |")
    L.append("|---|---|---|---|")
    for what, target, measured, good in R["checks"]:
        L.append("| %s | %s | %s | %s |" % (what, target, measured.replace("|", "\\|"), mark(good)))
    L.append("")
    L.append("Percentiles are nearest-rank.")
    L.append("")
    P = R.get("placement")
    if P:
        L.append("## 1. Placement")
        L.append("")
        L.append("| | |")
        L.append("|---|---|")
        L.append("| tenants | %d asked (--tenants), %d created by %d clients straight to the 3 processes (HTTP, "
                 "client k → process k mod 3), no server named, no owner |" % (P["asked"], P["want"], args.clients))
        for n in P["note"]:
            L.append("| note | %s |" % n)
        L.append("| wall time | %.1f s (%.1f tenants/s; the first 100 at %.1f/s) |" % (
            P["wall"], P["created"] / P["wall"] if P["wall"] else 0, P["rate_first"]))
        L.append("| creation latency p50 / p99 / max | %s / %s / %s ms |" % (fmt(P["p50"], 0), fmt(P["p99"], 0),
                                                                         fmt(P["lat_max"], 0)))
        L.append("| tenants per server (GET /admin/servers, this run's) | %s |" % ", ".join(
            "%s %d" % (n, P["counts"][n]) for n in SERVERS))
        L.append("| tenant databases on each cluster (pg_database, `%s…`) | %s |" % (P["prefix"], ", ".join(
            "%s %d" % (n, P["sql_counts"][n]) for n in SERVERS)))
        L.append("| max ÷ min | %.4f |" % P["ratio"])
        if P["size_mb"]:
            L.append("| one empty tenant database | %.1f MiB |" % P["size_mb"])
        L.append("| free in /var/tmp before / after the phase | %.1f GB / %.1f GB |" % (P["disk_before"], P["disk_after"]))
        L.append("| capped phase | `max_tenants` of %s set to %d (it had %d), then %d tenants created by %d clients "
                 "in %.1f s (p50 %s ms, p99 %s ms) |" % (P["capped"], P["cap"], P["cap_before"], P["extra"],
                                                          args.clients, P["wall2"], fmt(P["p50_2"], 0),
                                                          fmt(P["p99_2"], 0)))
        L.append("| where the %d went | %s; %d failed |" % (P["extra"], ", ".join(
            "%s +%d" % (n, P["counts2"][n]) for n in SERVERS), len(P["failed2"])))
        L.append("| %s during the capped phase | highest count seen: GET /admin/servers %d (%d polls, every ~20 ms), "
                 "pg_database %d (%d polls, every ~0.1 s); after: %d / %d |" % (
                     P["capped"], P["api_max"], P["api_polls"], P["sql_max"], P["sql_polls"], P["final_api"],
                     P["final_sql"]))
        if P["deleted"]:
            d = P["deleted"]
            L.append("| cleanup | %d tenants deleted (DELETE /admin/tenants/:id, %d clients) in %.1f s, %d failed |" % (
                d["ok"], args.delete_clients, d["seconds"], len(d["bad"])))
        L.append("")
        fails = P["failed"] + P["failed2"]
        if fails:
            L.append("Failed creations (first 10 of %d):" % len(fails))
            L.append("")
            for tid, t, lat, st, body in fails[:10]:
                L.append("- %s: %s after %.0f ms: `%s`" % (tid, st, lat, str(body)[:200]))
            L.append("")
        if P["deleted"] and P["deleted"]["bad"]:
            L.append("Failed deletions (first 5): " + "; ".join("%s %s %s" % x for x in P["deleted"]["bad"][:5]))
            L.append("")
    S = R.get("stop")
    if S:
        L.append("## 2. pg3 stopped for %.0f s" % S["seconds"])
        L.append("")
        L.append("%d tenants per server (%s), %d reader thread(s) each, every thread %.0f GET /api/users/:id per "
                 "second, %s; %.0f s of load, then SIGSTOP to pg3's postmaster (pid %d) and its %d children "
                 "(sent within %.1f ms), SIGCONT %.0f s later, then %.0f s more. Answers are put in a window by the "
                 "time they arrived; latencies of \"during\" are of the requests sent while pg3 was stopped." % (
                     args.stop_tenants, ", ".join(t for t, _ in S["tenants"]), args.stop_threads, args.stop_rate,
                     "straight to the 3 processes" if args.stop_direct else "through HAProxy (HTTPS, keep-alive)",
                     args.stop_before, S["pm"], S["children"], S["t_stop_ms"], args.stop_seconds, args.stop_after))
        L.append("")
        stop_table(L, S)
        if S.get("long"):
            T = S["long"]
            L.append("### The same readers, pg3 stopped for %.0f s (for information: when does the first 503 come?)" %
                     T["seconds"])
            L.append("")
            L.append("After the stop above and its %.0f s of load (\"before\" counts from 1 s after its SIGCONT), "
                     "pg3 was stopped again (postmaster pid %d and %d children, sent within %.1f ms) for %.0f s, "
                     "then %.0f s of load. No target here; the targets above "
                     "are of the %.0f s stop." % (args.stop_after, T["pm"], T["children"], T["t_stop_ms"], T["seconds"],
                                              args.stop_after, args.stop_seconds))
            L.append("")
            stop_table(L, T)
    G = R.get("routing")
    if G:
        L.append("## 3. Routing cost")
        L.append("")
        L.append("wrk (`-t%d -c%d`, bench/wrk/get_user.lua: a random line \"token user_id\" per request, %d users per "
                 "tenant, one session per tenant) straight to one tenantd process (HTTP :%s, not HAProxy); A = %d "
                 "tenants all on `main`, B = %d tenants round-robin on main/pg2/pg3; %d s warm-up of each, then "
                 "%d runs of %d s each in the order %s." % (
                     args.wrk_threads, args.routing_connections, args.routing_users, G["port"], args.routing_tenants,
                     args.routing_tenants, args.routing_warmup, len(G["order"]), args.routing_seconds,
                     ", ".join("A" if o == "single" else "B" for o in G["order"])))
        L.append("")
        L.append("| | req/s (each run) | median | min – max (spread of the repeats) | p50 / p99 ms (each run) | "
                 "1-min load after each run | build processes after each run |")
        L.append("|---|---|---|---|---|---|---|")
        for label, name in (("single", "A: 20 on main"), ("spread", "B: 20 over main/pg2/pg3")):
            rs = G["runs"][label]
            v = [r["rps"] for r in rs]
            L.append("| %s | %s | %.0f | %.0f – %.0f (%.1f %%) | %s | %s | %s |" % (
                name.replace("20", str(args.routing_tenants)), ", ".join("%.0f" % x for x in v), G["med"][label],
                min(v), max(v), (max(v) - min(v)) / statistics.median(v) * 100,
                ", ".join("%.2f / %.2f" % (r["p50"], r["p99"]) for r in rs),
                ", ".join("%.2f" % r["load1"] for r in rs), ", ".join(str(r["compilers"]) for r in rs)))
        L.append("")
        L.append("Ratio B ÷ A: %.3f of the medians; per pair (run i of B ÷ run i of A): %s." % (
            G["ratio"], ", ".join("%.3f" % x for x in G["pair_ratios"])))
        L.append("")
        L.append("tenantd's CPU per request (utime + stime of the process wrk talks to, ÷ requests), each run: "
                 "A %s µs; B %s µs; medians %.1f / %.1f, B ÷ A %.3f." % (
                     ", ".join("%.1f" % r["us_per_req"] for r in G["runs"]["single"]),
                     ", ".join("%.1f" % r["us_per_req"] for r in G["runs"]["spread"]),
                     G["cpu"]["single"], G["cpu"]["spread"], G["cpu_ratio"]))
        L.append("")
    ok = all(c[3] for c in R["checks"])
    L.append("Overall: %s" % ("all targets met ✅" if ok else "targets missed ❌"))
    return "\n".join(L) + "\n", ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="placement,stop,routing", help="comma-separated: placement,stop,routing")
    ap.add_argument("--tenants", type=int, default=2000, help="tenants created in the placement phase")
    ap.add_argument("--clients", type=int, default=4, help="concurrent creating clients")
    ap.add_argument("--max-create-s", type=float, default=900,
                    help="fewer tenants when the first 100 say creating --tenants would take longer")
    ap.add_argument("--capped-server", default="pg3", choices=SERVERS)
    ap.add_argument("--cap-headroom", type=int, default=5, help="max_tenants = the server's count + this")
    ap.add_argument("--capped-extra", type=int, default=100, help="tenants created with the cap set")
    ap.add_argument("--keep-tenants", action="store_true", help="do not delete the placement tenants")
    ap.add_argument("--delete-clients", type=int, default=6)
    ap.add_argument("--stop-tenants", type=int, default=3, help="reading tenants per server")
    ap.add_argument("--stop-threads", type=int, default=2, help="reader threads per tenant")
    ap.add_argument("--stop-rate", type=float, default=20, help="requests/s of each reader thread")
    ap.add_argument("--stop-before", type=float, default=10)
    ap.add_argument("--stop-seconds", type=float, default=5)
    ap.add_argument("--stop-after", type=float, default=10)
    ap.add_argument("--stop-long-seconds", type=float, default=10,
                    help="then a second, longer stop (information only: when the first 503 comes); 0: none")
    ap.add_argument("--stop-direct", action="store_true", help="readers straight to the processes, not HAProxy")
    ap.add_argument("--routing-tenants", type=int, default=20)
    ap.add_argument("--routing-users", type=int, default=10)
    ap.add_argument("--routing-repeats", type=int, default=5)
    ap.add_argument("--routing-seconds", type=int, default=10)
    ap.add_argument("--routing-warmup", type=int, default=3)
    ap.add_argument("--routing-connections", type=int, default=16)
    ap.add_argument("--routing-alternate-order", action="store_true",
                    help="A,B then B,A ... instead of A,B,A,B,...")
    ap.add_argument("--wrk-threads", type=int, default=1)
    ap.add_argument("--cluster-dir", default=os.environ.get("CLUSTER_DIR", BED_DEFAULTS["CLUSTER_DIR"]))
    ap.add_argument("--reuse-bed", action="store_true", help="keep the bed's data from an earlier run (default: purge)")
    ap.add_argument("--keep-bed", action="store_true", help="leave the bed running at the end")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "servers-latest.md"))
    args = ap.parse_args()
    args.only = [x.strip() for x in args.only.split(",") if x.strip()]
    for x in args.only:
        if x not in ("placement", "stop", "routing"):
            die("--only: unknown phase " + x)
    if shutil.which("wrk") is None and "routing" in args.only:
        die("wrk is not installed")

    started_wall = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    load_start = mv.loadavg()
    compilers_start = mv.compiler_processes()
    log("load average at start: %s; build processes running: %d; %.1f GB free in /var/tmp" % (
        load_start, compilers_start, free_gb()))
    b = mv.bed(args)
    # Creation and login limits per client address off too (they are per hour / per minute and
    # this run creates thousands of tenants from 127.0.0.1).
    b.env["TENANT_CREATES_PER_CLIENT"] = "1000000"
    b.env["LOGIN_SUCCESSES_PER_CLIENT"] = "1000000"
    log("starting the bed in %s" % args.cluster_dir)
    b.start(fresh=not args.reuse_bed)
    run_id = "%04x" % random.randrange(65536)
    R = {"checks": []}
    sampler_stop = threading.Event()
    sampler = mv.machine_sampler(sampler_stop)
    sampler.start()
    work = tempfile.mkdtemp(prefix="bench-servers-")
    try:
        if "placement" in args.only:
            phase_placement(b, args, run_id, R)
        if "stop" in args.only:
            phase_stop(b, args, run_id, R)
        if "routing" in args.only:
            phase_routing(b, args, run_id, R, work)
    finally:
        sampler_stop.set()
        sampler.join()
        shutil.rmtree(work, ignore_errors=True)
        load_end = mv.loadavg()
        if R["checks"]:
            text, ok = report(b, args, R, started_wall, load_start, load_end, compilers_start, sampler)
            print(text)
            os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
            with open(args.out, "w") as f:
                f.write(text)
            log("report written to %s" % args.out)
        else:
            ok = False
        if args.keep_bed:
            log("the bed stays up (%s); stop it with CLUSTER_DIR=%s scripts/cluster down" % (b.dir, b.dir))
        else:
            b.stop()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
