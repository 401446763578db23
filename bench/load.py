#!/usr/bin/env python3
"""Request-path load benchmark (standard library only); run it through bench/run.

Starts a private PostgreSQL cluster (tests/support/pg_cluster.sh) and a release tenantd,
creates tenants through POST /tenants, seeds their users with COPY (one precomputed Argon2id
hash for every seeded account, sessions inserted with SQL), mints one HS256 access token per
line of a token file, and in one run measures:
  ceilings  pgbench (the server's SELECT by primary key, -M prepared) at the scenario's client
            count and at 16 clients; GET / through tenantd (HTTP ceiling); raw Argon2id rate
  a  GET /api/users/:id, 20 tenants x 1,000 users, 64 connections
  b1 the same over 1,000 tenants, tenant drawn from a Zipf distribution (s = 1.1), defaults
  b2 the same over 1,000 tenants, uniform, budget 1,100 connections (PostgreSQL's
     max_connections raised to fit); PostgreSQL's memory for those backends
  b3 a connect storm (uniform over 1,000 tenants, budget 50) while (a) runs on its 20 tenants
  c  read/write mix: 80 % GET, 10 % POST /api/users, 10 % PUT /api/users/:id
  d  a login storm (16 connections) while (a) runs
  e  10,000 idle keep-alive connections held open while (a) runs
  u  the cost of per-tenant usage accounting: (a) with it off and on, interleaved
Each run reports req/s, p50, p99, errors, server RSS and CPU, PostgreSQL's CPU and the most
tenant connections tenantd held. Prints a Markdown table and writes it to --out.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from load_common import *  # noqa: E402,F401,F403 (constants, psql, sampling, server, seeding)
from load_runs import *  # noqa: E402,F401,F403 (wrk, pgbench, the bench class)
from load_report import *  # noqa: E402,F401,F403 (machine, report)


def warm_sessions(b, lines, conns, rounds=10):
    """(a)'s (and (b2)'s) warm-up on a freshly started server: every session once (shuffled),
    then at random until the server's caches hold them all, i.e. until a 2 s run costs the
    master database under one transaction per 1,000 requests (at most `rounds` such runs).
    Each I/O lane keeps its own caches, so a session is warm only once every lane has seen
    it; a 5 s random warm-up left 2026-12-06 runs at up to 0.085 master transactions per
    request."""
    b.wrk("get_user.lua", [lines], conns, b.args.warmup, {"BENCH_EACH_ONCE": str(b.args.wrk_threads)}).result()
    for _ in range(rounds):
        _, master0 = b.db_counters()
        requests = b.wrk("get_user.lua", [lines], conns, 2).result()["requests"]
        time.sleep(0.6)  # the statistics arrive late
        _, master1 = b.db_counters()
        if master1 - master0 < max(1, requests) / 1000:
            return
    log("warm-up: the master database still answers %.3f transactions per request" % (
        (master1 - master0) / max(1, requests)))


def root_against_baseline(b, pg, master_db, url, common_env, conns, warm):
    """GET / on the current build and on --baseline-binary, interleaved --repeat times; the
    baseline gets a master database of its own (its schema is older). Returns both medians."""
    psql(pg, "CREATE DATABASE %s_base OWNER %s" % (master_db, pg["TEST_PG_APP_USER"]))
    builds = (("current", b.args.binary, dict(common_env)),
              ("baseline", b.args.baseline_binary, dict(common_env, MASTER_DATABASE_URL=url + "_base")))
    runs = {name: [] for name, _, _ in builds}
    current = b.args.binary
    try:
        for _ in range(b.args.repeat):
            for name, binary, env in builds:
                b.args.binary = binary
                b.start_server(env)
                warm(lambda s: b.wrk("plain.lua", ["/"], conns, s))
                runs[name] += b.measure("GET / with the %s build" % name, lambda: b.wrk("plain.lua", ["/"], conns))
    finally:
        b.args.binary = current
    return median_result(runs["current"]), median_result(runs["baseline"])


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
    ap.add_argument("--only", default="ceil,a,b1,b2,b3,c,d,e,u",
                    help="comma-separated subset of ceil,a,b1,b2,b3,c,d,e,u")
    ap.add_argument("--tenants", type=int, default=20, help="tenants in (a), (c), (d), (e)")
    ap.add_argument("--keep-logs", default="", help="copy the servers' logs into this directory at the end")
    ap.add_argument("--tenants-b", type=int, default=100 if quick else 1000, help="tenants in (b1), (b2), (b3)")
    ap.add_argument("--users", type=int, default=1000, help="users per tenant")
    ap.add_argument("--tokens-b", type=int, default=20, help="tokens (accounts) per tenant in (b1)-(b3)")
    ap.add_argument("--zipf-s", type=float, default=1.1, help="Zipf exponent of the tenant distribution in (b1)")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--login-connections", type=int, default=16)
    ap.add_argument("--idle", type=int, default=2000 if quick else 10000, help="idle connections in (e)")
    ap.add_argument("--budget-b2", type=int, default=1100,
                    help="TENANT_POOL_MAX_CONNECTIONS in (b2); PostgreSQL's max_connections is raised above it")
    ap.add_argument("--budget-b3", type=int, default=50, help="TENANT_POOL_MAX_CONNECTIONS in (b3)")
    ap.add_argument("--storm-connections", type=int, default=16, help="wrk connections of the connect storm in (b3)")
    ap.add_argument("--wrk-threads", type=int, default=1, help="wrk -t (also pgbench -j)")
    ap.add_argument("--argon2-threads", type=int, default=os.cpu_count())
    ap.add_argument("--server-env", action="append", metavar="K=V",
                    help="server setting for every scenario (repeatable), e.g. TENANT_POOL_SIZE=2")
    ap.add_argument("--b-env", action="append", metavar="K=V", help="extra server setting for (b1)-(b3) only")
    ap.add_argument("--create-concurrency", type=int, default=2)
    ap.add_argument("--sweep", metavar="CFG;CFG...",
                    help="instead of the scenarios, run (a) under each server configuration (CFG = K=V,K=V), "
                         "interleaved --repeat times, e.g. 'TENANT_POOL_SIZE=2;TENANT_POOL_SIZE=3,THREADS=1'; "
                         "BINARY=path in a CFG runs that build instead")
    ap.add_argument("--hold", action="store_true",
                    help="after seeding, print the server's port and the token file of (a) and wait (for profiling "
                         "by hand); Ctrl-C ends it")
    ap.add_argument("--baseline-binary",
                    help="with ceil: also measure GET / on this build (bench/build-baseline makes the one before "
                         "issue 11's work), interleaved with the current one, each on its own master database; "
                         "reports the HTTP ceiling per core (tenantd CPU per request) against it")
    ap.add_argument("--profile", action="store_true",
                    help="after the runs, profile one extra (a) run with perf record -a -g")
    ap.add_argument("--profile-binary", help="binary for the profile run (e.g. built with frame pointers)")
    ap.add_argument("--pg-host-auth", choices=["scram-sha-256", "md5", "trust"], default="scram-sha-256",
                    help="authentication of TCP connections in the private cluster (an experiment: what "
                         "connection set-up costs in (b)); the default is what pg_cluster.sh sets up")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench/results/load-latest.md"))
    args = ap.parse_args()
    args.binary = os.path.abspath(args.binary)
    if args.baseline_binary:
        args.baseline_binary = os.path.abspath(args.baseline_binary)
    args.argon2_bin = os.path.abspath(args.argon2_bin)
    if args.profile_binary:
        args.profile_binary = os.path.abspath(args.profile_binary)
    only = set(args.only.split(","))
    if args.tenants > args.tenants_b:
        args.tenants_b = args.tenants
    raise_nofile()

    work = tempfile.mkdtemp(prefix="tenantd-load-")
    pg_dir = os.path.join(work, "pg")
    pg_env = dict(os.environ)
    if "b2" in only:
        # (b2) holds a connection per tenant; leave room for master, pgbench and psql.
        pg_env["PG_MAX_CONNECTIONS"] = str(max(300, args.budget_b2 + 150))
    subprocess.run([os.path.join(ROOT, "tests/support/pg_cluster.sh"), "start", pg_dir], check=True, env=pg_env)
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
        b_env.update(parse_kv(args.b_env))
        b2_env = dict(b_env, TENANT_POOL_MAX_CONNECTIONS=str(args.budget_b2))
        b3_env = dict(b_env, TENANT_POOL_MAX_CONNECTIONS=str(args.budget_b3))
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
        if args.hold:
            log("holding: port %d, pid %d, (a) tokens in %s; e.g. wrk -t1 -c64 -d10s -s bench/wrk/get_user.lua "
                "http://127.0.0.1:%d -- %s" % (b.srv.port, b.srv.pid, lines_a, b.srv.port, lines_a))
            while True:
                time.sleep(3600)
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
        warm_a = lambda: warm_sessions(b, lines_a, conns)

        # (a) on freshly started servers with two settings in turn, so both see the same machine;
        # the median of each.
        def interleaved(first, second):
            runs = ([], [])
            for _ in range(args.repeat):
                for (env, label), into in zip((first, second), runs):
                    b.start_server(env)
                    warm_a()
                    into.append(b.measure(label, get_a)[0])
            return median_result(runs[0]), median_result(runs[1])

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
            if args.baseline_binary:
                res["root_now"], res["root_base"] = root_against_baseline(b, pg, master_db, url, common_env, conns,
                                                                          warm)

        # --- (a) --------------------------------------------------------------------------------
        if only & {"a", "d", "e"}:
            b.start_server(common_env)
            warm_a()
            res["a"], _ = b.repeat("a: GET user, %d tenants" % args.tenants, get_a)
            res["a_answers"] = verify_answers(b, lines_a, conns, 3)
            log("(a) answers checked against the database: %d, wrong %d" % (res["a_answers"]["checked"],
                                                                          res["a_answers"]["wrong"]))

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

        # --- (u) --------------------------------------------------------------------------------
        if "u" in only:
            # Off and on in turn on freshly started servers, so both see the same machine.
            res["u_off"], res["u_on"] = interleaved(
                (dict(common_env, USAGE_ENABLED="off"), "u: (a), usage off"),
                (dict(common_env, USAGE_ENABLED="on"), "u: (a), usage on"))
            b.start_server(common_env)


        # Idle RSS of the server that ran (a), (c), (d), (e), before (b) restarts it; tenantd
        # hands free memory back to the kernel after 5 s without a request in flight.
        time.sleep(8)
        idle_after = proc_rss_kib(b.srv.pid) / 1024
        log("idle RSS after the runs: %.1f MiB (%d open descriptors)" % (
            idle_after, len(os.listdir("/proc/%d/fd" % b.srv.pid))))

        # --- (b1) (b2) (b3): many tenants ---------------------------------------------------------
        # A connection is bound to one database, so uniform traffic over 1,000 tenants cannot be
        # served from a few dozen connections; these are what a real fleet looks like.
        get_uniform = lambda secs=None, c=conns: b.wrk("get_user.lua", [lines_b], c, secs)
        if "b1" in only:
            b.start_server(b_env)
            get_zipf = lambda secs=None: b.wrk("get_user_zipf.lua", [lines_b, str(args.tokens_b), str(args.zipf_s)],
                                               conns, secs)
            warm(get_zipf)
            res["b1"], _ = b.repeat("b1: GET user, %d tenants, Zipf" % args.tenants_b, get_zipf)
        if "b2" in only:
            b.start_server(b2_env)
            # Steady state: every tenant's connection open before the measured runs. Opening 1,000
            # (SCRAM, a backend each) takes longer than one warm-up; they used to be opened
            # during the first measured run (2026-12-06 18:02: 189 opened in it, p99 373 ms).
            for _ in range(8):
                warm(get_uniform)
                held = b.activity.count()
                log("b2 warm-up: %d tenant connections open" % held)
                if held >= args.tenants_b:
                    break
            # Then their sessions, in every lane's caches: 39,600 at ~1,000 req/s take a minute.
            warm_sessions(b, lines_b, conns, rounds=40)
            runs = []
            for _ in range(args.repeat):
                r = b.measure("b2: GET user, %d tenants, uniform" % args.tenants_b, get_uniform)[0]
                # Taken right after the run, while the connections are still open (idle timeout).
                r["pg_backends"] = pg_backend_memory(b.postmaster, pg["TEST_PG_APP_USER"], TENANT_PREFIX)
                runs.append(r)
            res["b2"] = median_result(runs)
            res["b2"]["pg_backends"] = max((r["pg_backends"] for r in runs), key=lambda m: m["count"])
        if "b3" in only:
            b.start_server(b3_env)
            warm_a()
            for r in (get_a(args.warmup), get_uniform(args.warmup, args.storm_connections)):
                r.result()
            quiet, storm = [], []
            for _ in range(args.repeat):
                # Each storm run is paired with a quiet (a) run on the same server right before it.
                quiet.append(b.measure("b3: (a) quiet", get_a)[0])
                storm.append(b.measure("b3: (a) during a connect storm",
                                       lambda: [get_a(), get_uniform(None, args.storm_connections)]))
            res["b3_quiet"] = median_result(quiet)
            res["b3_get"] = median_result([r[0] for r in storm])
            res["b3_storm"] = median_result([r[1] for r in storm])

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
        if args.keep_logs:
            os.makedirs(args.keep_logs, exist_ok=True)
            for folder, _, names in os.walk(work):
                for name in names:
                    if name.startswith("server-") and name.endswith(".log"):
                        shutil.copy(os.path.join(folder, name), args.keep_logs)
        shutil.rmtree(work, ignore_errors=True)


def sweep(args, b, common_env, lines_a, started):
    configs = []
    for cfg in args.sweep.split(";"):
        env = dict(common_env)
        env.update(parse_kv([kv for kv in cfg.split(",") if kv]))
        configs.append((cfg or "(defaults)", env))
    results = {name: [] for name, _ in configs}
    get_a = lambda secs=None: b.wrk("get_user.lua", [lines_a], args.connections, secs)
    default_binary = b.args.binary
    for _ in range(args.repeat):
        for name, env in configs:
            env = dict(env)
            # BINARY=path is not a server setting: that configuration runs another build (an
            # older commit's, say), so two builds are compared in one run.
            b.args.binary = os.path.abspath(env.pop("BINARY", default_binary))
            b.start_server(env)
            warm_sessions(b, lines_a, args.connections)
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
    warm_sessions(b, lines_a, conns)
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


if __name__ == "__main__":
    sys.exit(main())
