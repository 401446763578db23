"""The load generators of the benchmark (bench/load.py): wrk runs, pgbench (plain and
pipelined), the Argon2id rate, and `bench`, which measures one scenario with its samplers."""

from load_common import *  # noqa: F401,F403 (the benchmark's shared names)

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

    def __init__(self, args, port, script, script_args, conns, seconds, env=None):
        cmd = ["wrk", "-t%d" % args.wrk_threads, "-c%d" % conns, "-d%ds" % seconds, "--latency", "--timeout", "5s",
               "-s", os.path.join(WRK_DIR, script), "http://127.0.0.1:%d" % port, "--"] + script_args
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     preexec_fn=raise_nofile, env=dict(os.environ, **(env or {})))

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

    def wrk(self, script, script_args, conns, seconds=None, env=None):
        return wrk_run(self.args, self.srv.port, script, script_args, conns, seconds or self.args.seconds, env)

    def repeat(self, label, start_load, tenantd=True):
        runs = [self.measure(label, start_load, tenantd) for _ in range(self.args.repeat)]
        return median_result([r[0] for r in runs]), runs


def verify_answers(b, lines_a, conns, seconds):
    """(a) with every response checked: each is 200 with the user the request asked for, of the
    token's tenant, as the database holds it (its email read back after the run). Pipelining must
    never hand one request another's result."""
    out = os.path.join(b.work, "answers")
    b.wrk("get_user.lua", [lines_a], conns, seconds, {"BENCH_ANSWERS": out}).result()
    records = []
    for name in sorted(os.listdir(b.work)):
        if name.startswith("answers."):
            with open(os.path.join(b.work, name)) as f:
                records += [line.split() for line in f if line.strip()]
            os.remove(os.path.join(b.work, name))
    asked = {}  # tenant index -> user ids asked for (a user id's first field is its tenant's index)
    for rec in records:
        if len(rec) == 5 and rec[0] != "-":
            asked.setdefault(int(rec[0].split("-")[0]), set()).add(rec[0])
    truth = {}
    for i, ids in asked.items():
        rows = psql(b.pg, "SELECT id, email FROM users WHERE id IN (%s)" % ",".join("'%s'" % x for x in sorted(ids)),
                    TENANT_PREFIX + tenant_id(i))
        for row in rows.splitlines():
            uid, email = row.split("|")
            truth[uid] = email
    wrong = [rec for rec in records if len(rec) != 5 or rec[1] != "200" or rec[2] != rec[0] or
             rec[3] != tenant_id(int(rec[0].split("-")[0])) or truth.get(rec[0]) != rec[4]]
    return {"checked": len(records), "wrong": len(wrong), "examples": [" ".join(r) for r in wrong[:3]],
            "users": len(truth)}


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
