// Shared by the browser tests (docs_page.mjs, console_page.mjs): a real tenantd on a fresh
// master database of the private test cluster, and headless Chromium (Debian `chromium`,
// driven by playwright-core from web/node_modules; 1.61.x, the last that supports Node 18)
// that may only talk to that server and records console errors and CSP violations.
import { spawn, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, openSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const chromiumPath = "/usr/bin/chromium";
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
export const check = (ok, message) => {
  if (!ok) throw new Error(message);
  console.log(`ok: ${message}`);
};

// Exits 77 (skipped) when Chromium is absent, 1 when the pinned playwright-core cannot run on
// this Node; otherwise returns playwright-core's chromium.
export function loadChromium() {
  if (!existsSync(chromiumPath)) {
    console.log(`SKIP: ${chromiumPath} is absent (scripts/install-deps installs the Debian package chromium)`);
    process.exit(77);
  }
  const require = createRequire(new URL("../../web/package.json", import.meta.url));
  // Debian 12's npm brings Node 18: say so plainly instead of failing inside playwright.
  const playwrightPackage = require("playwright-core/package.json");
  const nodeNeeded = Number((playwrightPackage.engines?.node ?? "").match(/>=\s*(\d+)/)?.[1] ?? 0);
  if (Number(process.versions.node.split(".")[0]) < nodeNeeded) {
    console.error(`FAIL: playwright-core ${playwrightPackage.version} needs Node >= ${nodeNeeded}, ` +
                  `this is Node ${process.versions.node}; pin a version that supports it in web/package.json`);
    process.exit(1);
  }
  return require("playwright-core").chromium;
}

// The private cluster, as tests/support/pg_cluster.sh wrote it.
function clusterEnv() {
  const file = process.env.TENANTD_TEST_PG_ENV;
  if (!file) throw new Error("TENANTD_TEST_PG_ENV is not set (run through ctest: fixture pg)");
  const env = {};
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return env;
}

// One tenantd serving a master database of its own; stop() removes everything it made.
export class TestServer {
  constructor(binary, name) {
    this.binary = binary;
    this.pg = clusterEnv();
    this.suffix = randomBytes(5).toString("hex");
    this.master = `m_${name}_${this.suffix}`;
    this.prefix = `t${this.suffix}_`;
    this.workDir = mkdtempSync(join(tmpdir(), "tenantd-browser-"));
    this.logPath = join(this.workDir, "server.log");
    this.process = null;
    this.base = null;
  }

  psql(sql) {
    const pg = this.pg;
    return execFileSync(join(pg.TEST_PG_BIN, "psql"),
      ["-h", pg.TEST_PG_SOCKET_DIR, "-p", pg.TEST_PG_PORT, "-U", pg.TEST_PG_SUPERUSER, "-d", "postgres",
       "-v", "ON_ERROR_STOP=1", "-qAtc", sql], { encoding: "utf8" });
  }

  async start(extraEnv = {}) {
    const pg = this.pg;
    this.psql(`CREATE DATABASE ${this.master} OWNER ${pg.TEST_PG_APP_USER}`);
    const log = openSync(this.logPath, "a");
    this.process = spawn(this.binary, ["serve"], {
      cwd: this.workDir,
      stdio: ["ignore", log, log],
      env: {
        PATH: process.env.PATH, HOME: process.env.HOME ?? this.workDir,
        ...Object.fromEntries(Object.entries(process.env).filter(([k]) => /^(A|UB|LS|T)SAN_OPTIONS$/.test(k))),
        MASTER_DATABASE_URL: `postgresql://${pg.TEST_PG_APP_USER}:${pg.TEST_PG_APP_PASSWORD}@${pg.TEST_PG_HOST}:${pg.TEST_PG_PORT}/${this.master}`,
        JWT_SECRET: randomBytes(36).toString("base64url"),
        HOST: "127.0.0.1", PORT: "0", LOG_LEVEL: "info", LOG_FORMAT: "text",
        TENANT_DB_PREFIX: this.prefix, TENANT_SIGNUP: "open", BACKUP_DIR: join(this.workDir, "backups"),
        ...extraEnv,
      },
    });
    const deadline = Date.now() + 30_000;
    let port;
    while (!port) {
      const text = readFileSync(this.logPath, "utf8");
      const m = text.match(/tenantd listening on 127\.0\.0\.1:(\d+)/);
      if (m) port = Number(m[1]);
      else if (this.process.exitCode !== null) throw new Error(`tenantd exited (${this.process.exitCode}) before listening:\n${text}`);
      else if (Date.now() > deadline) throw new Error(`tenantd did not listen within 30 s:\n${text}`);
      else await sleep(50);  // polling with a deadline
    }
    this.base = `http://127.0.0.1:${port}`;
    for (;;) {  // ready = master migrated; until then only the probes answer
      try {
        if ((await fetch(`${this.base}/readyz`)).status === 200) break;
      } catch { /* not accepting yet */ }
      if (Date.now() > deadline) throw new Error(`tenantd not ready within 30 s:\n${readFileSync(this.logPath, "utf8")}`);
      await sleep(50);
    }
    return this.base;
  }

  logTail(n = 4000) {
    return existsSync(this.logPath) ? readFileSync(this.logPath, "utf8").slice(-n) : "";
  }

  // SIGTERM, then SIGKILL after 10 s; returns the exit code (null if it had to be killed).
  async stop() {
    let code = this.process ? this.process.exitCode : null;
    if (this.process && this.process.exitCode === null) {
      this.process.kill("SIGTERM");
      const deadline = Date.now() + 10_000;
      while (this.process.exitCode === null && this.process.signalCode === null && Date.now() < deadline) await sleep(50);
      if (this.process.exitCode === null && this.process.signalCode === null) this.process.kill("SIGKILL");
      code = this.process.exitCode;
    }
    for (const db of this.tenantDatabases()) {
      try {
        this.psql(`ALTER DATABASE "${db}" IS_TEMPLATE false`);  // the tenant template refuses DROP otherwise
        this.psql(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`);
      } catch { /* thrown away with the cluster */ }
    }
    try { this.psql(`DROP DATABASE IF EXISTS ${this.master} WITH (FORCE)`); } catch { /* same */ }
    rmSync(this.workDir, { recursive: true, force: true });
    return code;
  }

  tenantDatabases() {
    try {
      return this.psql(`SELECT datname FROM pg_database WHERE datname LIKE '${this.prefix}%'`).split("\n").filter(Boolean);
    } catch {
      return [];
    }
  }
}

// Headless Chromium with a profile of its own. Requests to anything but `base` (and data:
// URLs) are aborted and listed in `foreign`; console errors, page errors and CSP violations
// are collected in `problems`.
export class Browser {
  static async launch(chromium, base, viewport = { width: 1280, height: 900 }) {
    const b = new Browser();
    b.profile = mkdtempSync(join(tmpdir(), "tenantd-chromium-"));
    b.context = await chromium.launchPersistentContext(b.profile, {
      executablePath: chromiumPath,
      headless: true,
      viewport,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    b.foreign = [];
    b.problems = [];
    await b.context.route("**/*", (route) => {
      const url = route.request().url();
      if (url.startsWith(`${base}/`) || url.startsWith("data:")) return route.continue();
      b.foreign.push(url);
      return route.abort();
    });
    b.page = b.context.pages()[0] ?? (await b.context.newPage());
    b.page.on("console", (msg) => { if (msg.type() === "error") b.problems.push(msg.text()); });
    b.page.on("pageerror", (err) => b.problems.push(String(err)));
    return b;
  }

  async close() {
    await this.context?.close().catch(() => {});
    // Only after Chromium has exited: it writes into its profile until then (removing it
    // earlier failed with ENOTEMPTY).
    try {
      if (this.profile) rmSync(this.profile, { recursive: true, force: true, maxRetries: 3 });
    } catch (err) {
      console.log(`warning: could not remove ${this.profile}: ${err.message}`);
    }
  }
}

// Runs a browser test: `body(server, keep)` against a started server, then closes the browser
// it handed to keep() (if any) and stops the server. Fails (exit 1) on an exception or when tenantd does
// not exit 0 on SIGTERM; prints the server's log tail on failure.
export async function runBrowserTest(server, env, body) {
  let failed = false;
  let browser;
  try {
    await server.start(env);
    await body(server, (b) => (browser = b));  // keep(b): close b at the end, return it
  } catch (err) {
    failed = true;
    console.error(`FAIL: ${err.stack ?? err}`);
    console.error(server.logTail());
  } finally {
    await browser?.close();
    const code = await server.stop();
    if (!failed && code !== 0) {
      failed = true;
      console.error(`FAIL: tenantd exited with ${code} on SIGTERM (expected 0)`);
    }
  }
  process.exit(failed ? 1 : 0);
}
