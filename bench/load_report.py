"""The benchmark's report (bench/load.py): the machine, the Markdown table with its targets,
and readable perf lines."""

from load_common import *  # noqa: F401,F403 (the benchmark's shared names)
from load_runs import PGBENCH_PIPELINE

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
        "%d s per run, median of %d run(s), warm-up %d s (for (a) and (b2) longer, until their sessions are in "
        "every lane's caches); wrk -t%d, load generator on the same machine."
        % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)), args.seconds, args.repeat, args.warmup,
           args.wrk_threads),
        "",
        "Machine: %s cores (`nproc`), %s RAM, %s; %s; Linux %s; %s. Load average at start of each run in "
        "the last column (other engineers were using the machine)." % (
            m["nproc"], m["ram"], m["cpu"], m["pg"], m["kernel"], m["wrk"]),
        "",
        "Server settings: LOG_LEVEL=warn %s; (b1): %s; (b2): TENANT_POOL_MAX_CONNECTIONS=%d, PostgreSQL "
        "max_connections=%d; (b3): TENANT_POOL_MAX_CONNECTIONS=%d. PostgreSQL TCP authentication: %s." % (
            " ".join("%s=%s" % kv for kv in sorted(common_env.items())) or "(defaults)",
            " ".join("%s=%s" % kv for kv in sorted(b_env.items())) or "(defaults)", args.budget_b2,
            max(300, args.budget_b2 + 150), args.budget_b3, args.pg_host_auth),
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
    if "root_base" in res:
        row("GET / on this build, interleaved with the baseline below", res.get("root_now"))
        row("GET / on the baseline build (`%s`)" % os.path.relpath(args.baseline_binary, ROOT), res.get("root_base"))
    row("(a) GET /api/users/:id, %d tenants × %d users, %d conns" % (args.tenants, args.users, c), res.get("a"))
    row("(b1) same over %d tenants, Zipf (s = %.1f), default budget" % (args.tenants_b, args.zipf_s), res.get("b1"))
    row("(b2) same over %d tenants, uniform, budget %d" % (args.tenants_b, args.budget_b2), res.get("b2"))
    row("(b3) (a) quiet, budget %d, paired with each run below" % args.budget_b3, res.get("b3_quiet"))
    row("(b3) (a) during a connect storm over %d tenants" % args.tenants_b, res.get("b3_get"))
    row("(b3) the connect storm, %d conns" % args.storm_connections, res.get("b3_storm"))
    row("(c) 80 %% GET / 10 %% POST / 10 %% PUT, %d conns" % c, res.get("c"))
    row("(d) (a) during a login storm", res.get("d_get"))
    row("(d) the login storm, %d conns" % args.login_connections, res.get("d_login"))
    row("(d) the login storm alone (no GET load), %d conns" % args.login_connections, res.get("d_alone"))
    row("(u) (a) with usage accounting off (USAGE_ENABLED=off)", res.get("u_off"))
    row("(u) (a) with usage accounting on (the default)", res.get("u_on"))
    if "e" in res:
        row("(e) (a) without idle conns, paired with each run below", res.get("e_paired"))
        row("(e) (a) with %d idle keep-alive conns" % res["e"]["idle_open"], res.get("e"))
    lines += ["", "| target | measured | |", "|---|---|---|"]

    def target(name, measured, good):
        lines.append("| %s | %s | %s |" % (name, measured, ok(good)))

    a, pgb = res.get("a"), res.get("pgbench%d" % c)
    if a and pgb:
        target("(a) ≥ 1.5× pgbench at %d clients" % c, "%.2f× (%.0f vs %.0f)" % (a["rps"] / pgb["rps"], a["rps"],
                                                                               pgb["rps"]),
               a["rps"] >= 1.5 * pgb["rps"])
        a_pg, pgb_pg = 1e4 * a["pg_cpu_pct"] / a["rps"], 1e4 * pgb["pg_cpu_pct"] / pgb["rps"]
        target("(a) tenantd CPU ≤ 35 µs per request; PostgreSQL CPU per query below pgbench's",
               "%.0f µs; PostgreSQL %.0f µs per query vs %.0f for pgbench" % (a["cpu_us_per_req"], a_pg, pgb_pg),
               a["cpu_us_per_req"] <= 35 and a_pg < pgb_pg)
    now, base = res.get("root_now"), res.get("root_base")
    if now and base:
        target("GET / (HTTP ceiling) ≥ 1.3× the baseline build's, per core (tenantd CPU per request)",
               "%.1f vs %.1f µs per request (%.2f×); %.0f vs %.0f req/s" % (
                   now["cpu_us_per_req"], base["cpu_us_per_req"], base["cpu_us_per_req"] / now["cpu_us_per_req"],
                   now["rps"], base["rps"]),
               base["cpu_us_per_req"] >= 1.3 * now["cpu_us_per_req"])
    if a:
        target("(a) p99 ≤ 10 ms, zero errors", "%s, %d errors" % (ms(a["p99"]), a["errors"]),
               a["p99"] <= 10 and a["errors"] == 0)
    answers = res.get("a_answers")
    if answers:
        target("(a) every answer is the requested user of the token's tenant, as the database holds it",
               "%d responses of a 3 s (a) run checked (%d users), %d wrong%s" % (
                   answers["checked"], answers["users"], answers["wrong"],
                   "".join("; e.g. `%s`" % x for x in answers["examples"])),
               answers["checked"] >= 1000 and answers["wrong"] == 0)
    ratio = lambda r: "%.2f×" % (r["rps"] / a["rps"]) if a else "(a) not run"
    if "b1" in res:
        bb = res["b1"]
        target("(b1) Zipf over %d tenants ≥ 0.7× (a)" % args.tenants_b,
               "%s (%.0f), %d connections opened, max %d held, %d errors" % (
                   ratio(bb), bb["rps"], bb["tenant_conns_opened"], bb["tenant_conns_max"], bb["errors"]),
               bool(a) and bb["rps"] >= 0.7 * a["rps"] and bb["errors"] == 0)
    if "b2" in res:
        bb, mem = res["b2"], res["b2"]["pg_backends"]
        target("(b2) uniform over %d tenants, budget %d, ≥ 0.7× (a); PostgreSQL's memory for the backends"
               % (args.tenants_b, args.budget_b2),
               "%s (%.0f), max %d connections held, %d errors; %d backends: PSS %.0f MiB in all, private %.0f MiB "
               "(%.2f MiB each)" % (ratio(bb), bb["rps"], bb["tenant_conns_max"], bb["errors"], mem["count"],
                                    mem["pss_kib"] / 1024, mem["private_kib"] / 1024,
                                    mem["private_kib"] / 1024 / max(1, mem["count"])),
               bool(a) and bb["rps"] >= 0.7 * a["rps"] and bb["errors"] == 0 and
               bb["tenant_conns_max"] <= args.budget_b2)
    if "b3_get" in res:
        q, g, st = res["b3_quiet"], res["b3_get"], res["b3_storm"]
        target("(b3) (a)'s p99 during a connect storm ≤ 2× quiet, tenant connections ≤ %d" % args.budget_b3,
               "%s vs %s quiet (%.1f×), %d errors; storm %.0f req/s, %d connections opened, max %d held" % (
                   ms(g["p99"]), ms(q["p99"]), g["p99"] / q["p99"], g["errors"], st["rps"],
                   g["tenant_conns_opened"], g["tenant_conns_max"]),
               g["p99"] <= 2 * q["p99"] and g["errors"] == 0 and g["tenant_conns_max"] <= args.budget_b3)
    if a and "c" in res:
        target("(c) 80/10/10 ≥ 0.8× (a)", "%.2f× (%.0f vs %.0f), %d errors" % (
            res["c"]["rps"] / a["rps"], res["c"]["rps"], a["rps"], res["c"]["errors"]),
               res["c"]["rps"] >= 0.8 * a["rps"] and res["c"]["errors"] == 0)
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
    if "u_on" in res:
        on, off = res["u_on"], res["u_off"]
        each = lambda r: ", ".join("%.0f" % x for x in r.get("all_rps", [r["rps"]]))
        target("(u) (a) with usage accounting ≥ 0.97× without, same run",
               "%.3f× (%.0f vs %.0f req/s; each %s vs %s), %.0f vs %.0f µs of tenantd CPU per request" % (
                   on["rps"] / off["rps"], on["rps"], off["rps"], each(on), each(off), on["cpu_us_per_req"],
                   off["cpu_us_per_req"]),
               on["rps"] >= 0.97 * off["rps"])
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

