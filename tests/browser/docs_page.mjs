// Browser test of the /docs page: starts a real tenantd on a fresh master database of the
// private test cluster, opens /docs in headless Chromium (Debian `chromium`, driven by
// playwright-core from web/node_modules; 1.61.x, the last that supports Node 18), checks
// that the endpoints are listed and that "Try it out" -> Execute on GET / shows a 200, and
// saves a screenshot.
//   node docs_page.mjs <tenantd binary> <screenshot.png>
// Needs TENANTD_TEST_PG_ENV (tests/support/pg_cluster.sh). Exit 0 pass, 1 fail, 77 skipped
// (only when /usr/bin/chromium is absent).
import { spawn, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, openSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";

const chromiumPath = "/usr/bin/chromium";
const [binary, screenshot = join(process.cwd(), "docs_page.png")] = process.argv.slice(2);
if (!existsSync(chromiumPath)) {
  console.log(`SKIP: ${chromiumPath} is absent (scripts/install-deps installs the Debian package chromium)`);
  process.exit(77);
}
if (!binary) throw new Error("usage: docs_page.mjs <tenantd binary> [screenshot.png]");
const require = createRequire(new URL("../../web/package.json", import.meta.url));
// The pinned playwright-core must support the Node that runs this file (Debian 12's npm brings
// Node 18): say so plainly instead of failing somewhere inside playwright.
const playwrightPackage = require("playwright-core/package.json");
const nodeNeeded = Number((playwrightPackage.engines?.node ?? "").match(/>=\s*(\d+)/)?.[1] ?? 0);
if (Number(process.versions.node.split(".")[0]) < nodeNeeded) {
  console.error(`FAIL: playwright-core ${playwrightPackage.version} needs Node >= ${nodeNeeded}, ` +
                `this is Node ${process.versions.node}; pin a version that supports it in web/package.json`);
  process.exit(1);
}
const { chromium } = require("playwright-core");

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const check = (ok, message) => {
  if (!ok) throw new Error(message);
  console.log(`ok: ${message}`);
};

// The private cluster, as pg_cluster.sh wrote it.
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

const pg = clusterEnv();
const psql = (sql) =>
  execFileSync(join(pg.TEST_PG_BIN, "psql"),
    ["-h", pg.TEST_PG_SOCKET_DIR, "-p", pg.TEST_PG_PORT, "-U", pg.TEST_PG_SUPERUSER, "-d", "postgres",
     "-v", "ON_ERROR_STOP=1", "-qAtc", sql], { encoding: "utf8" });

const suffix = randomBytes(5).toString("hex");
const master = `m_docs_${suffix}`;
const workDir = mkdtempSync(join(tmpdir(), "tenantd-browser-"));
let server;
let context;
let profile;

async function startServer() {
  psql(`CREATE DATABASE ${master} OWNER ${pg.TEST_PG_APP_USER}`);
  const logPath = join(workDir, "server.log");
  const log = openSync(logPath, "a");
  server = spawn(binary, ["serve"], {
    cwd: workDir,
    stdio: ["ignore", log, log],
    env: {
      PATH: process.env.PATH, HOME: process.env.HOME ?? workDir,
      ...Object.fromEntries(Object.entries(process.env).filter(([k]) => /^(A|UB|LS|T)SAN_OPTIONS$/.test(k))),
      MASTER_DATABASE_URL: `postgresql://${pg.TEST_PG_APP_USER}:${pg.TEST_PG_APP_PASSWORD}@${pg.TEST_PG_HOST}:${pg.TEST_PG_PORT}/${master}`,
      JWT_SECRET: randomBytes(36).toString("base64url"),
      HOST: "127.0.0.1", PORT: "0", LOG_LEVEL: "info", LOG_FORMAT: "text",
      TENANT_DB_PREFIX: `t${suffix}_`, TENANT_SIGNUP: "open",
    },
  });
  const deadline = Date.now() + 30_000;
  let port;
  while (!port) {
    const text = readFileSync(logPath, "utf8");
    const m = text.match(/tenantd listening on 127\.0\.0\.1:(\d+)/);
    if (m) port = Number(m[1]);
    else if (server.exitCode !== null) throw new Error(`tenantd exited (${server.exitCode}) before listening:\n${text}`);
    else if (Date.now() > deadline) throw new Error(`tenantd did not listen within 30 s:\n${text}`);
    else await sleep(50);  // polling with a deadline
  }
  const base = `http://127.0.0.1:${port}`;
  for (;;) {  // ready = master migrated; until then only the probes answer
    try {
      if ((await fetch(`${base}/readyz`)).status === 200) break;
    } catch { /* not accepting yet */ }
    if (Date.now() > deadline) throw new Error(`tenantd not ready within 30 s:\n${readFileSync(logPath, "utf8")}`);
    await sleep(50);
  }
  return base;
}

async function checkHttp(base) {
  const doc = await fetch(`${base}/openapi.json`);
  check(doc.status === 200 && doc.headers.get("content-type") === "application/json", "GET /openapi.json is application/json");
  check((await doc.json()).openapi.startsWith("3.1"), "the document is OpenAPI 3.1");
  const page = await fetch(`${base}/docs`);
  check(page.status === 200 && page.headers.get("content-type").startsWith("text/html"), "GET /docs is HTML");
  check(/script-src 'self'/.test(page.headers.get("content-security-policy") ?? ""), "GET /docs has a Content-Security-Policy");
  const css = await fetch(`${base}/docs/swagger-ui.css`);
  check(css.status === 200 && css.headers.get("content-type").startsWith("text/css") &&
        css.headers.get("cache-control") === "public, max-age=3600", "assets are cacheable text/css");
  check((await fetch(`${base}/docs/nope.js`)).status === 404, "an unknown /docs file is 404");
}

async function checkPage(base) {
  profile = mkdtempSync(join(tmpdir(), "tenantd-chromium-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const foreign = [];
  const problems = [];
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith(`${base}/`) || url.startsWith("data:")) return route.continue();
    foreign.push(url);
    return route.abort();
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("console", (msg) => { if (msg.type() === "error") problems.push(msg.text()); });
  page.on("pageerror", (err) => problems.push(String(err)));

  await page.goto(`${base}/docs`, { waitUntil: "load" });
  await page.locator(".opblock").first().waitFor({ timeout: 30_000 });
  for (const text of ["Service name and version", "Create a tenant (and optionally its owner)",
                      "Log in and get an access token", "List the tenant's users", "Change a member's role"]) {
    await page.getByText(text, { exact: true }).first().waitFor({ state: "visible", timeout: 10_000 });
    check(true, `the page lists "${text}"`);
  }
  for (const path of ["/auth/login", "/api/users/{id}", "/api/members/{user_id}", "/openapi.json"]) {
    await page.locator(`.opblock-summary-path[data-path="${path}"]`).first().waitFor({ state: "visible", timeout: 10_000 });
    check(true, `the page lists ${path}`);
  }

  const op = page.locator("#operations-service-service_info");
  await op.locator(".opblock-summary").click();
  await op.locator("button.try-out__btn").click();
  await op.locator("button.execute").click();
  const status = op.locator(".live-responses-table .response .response-col_status").first();
  await status.waitFor({ timeout: 15_000 });
  check((await status.innerText()).trim() === "200", "Try it out -> Execute on GET / shows 200");
  const body = await op.locator(".live-responses-table .response-col_description pre").first().innerText();
  check(body.includes('"service": "tenantd"'), "the response body is shown");
  await op.scrollIntoViewIfNeeded();
  await page.screenshot({ path: screenshot, fullPage: true });  // the list and the 200
  console.log(`screenshot: ${screenshot}`);

  check(foreign.length === 0, `nothing requested from another origin${foreign.length ? ": " + foreign.join(", ") : ""}`);
  check(problems.length === 0, `no console errors or CSP violations${problems.length ? ": " + problems.join(" | ") : ""}`);
}

let failed = false;
try {
  const base = await startServer();
  await checkHttp(base);
  await checkPage(base);
} catch (err) {
  failed = true;
  console.error(`FAIL: ${err.stack ?? err}`);
  if (existsSync(join(workDir, "server.log"))) console.error(readFileSync(join(workDir, "server.log"), "utf8").slice(-4000));
} finally {
  await context?.close().catch(() => {});
  // Only after Chromium has exited: it writes into its profile until then (removing it
  // earlier failed with ENOTEMPTY).
  try {
    if (profile) rmSync(profile, { recursive: true, force: true, maxRetries: 3 });
  } catch (err) {
    console.log(`warning: could not remove ${profile}: ${err.message}`);
  }
  if (server && server.exitCode === null) {
    server.kill("SIGTERM");
    const deadline = Date.now() + 10_000;
    while (server.exitCode === null && server.signalCode === null && Date.now() < deadline) await sleep(50);
    if (server.exitCode === null && server.signalCode === null) server.kill("SIGKILL");
  }
  try { psql(`DROP DATABASE IF EXISTS ${master} WITH (FORCE)`); } catch { /* the cluster is thrown away anyway */ }
  rmSync(workDir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
