// Browser test of the operator console (/console): a real tenantd with an ADMIN_TOKEN and three
// tenants, headless Chromium (tests/browser/support.mjs). Signs in with a wrong token (a clear
// error) and the right one, checks the tenants table against the admin API, filters and sorts,
// opens a tenant (facts, a rendered chart, backups), suspends and resumes it through the
// confirmation dialog and checks the API reflects each, opens the Move… dialog (no other
// server here: it says so and sends nothing), opens the servers page (GET /admin/servers, no
// moves, every tenant migrated), and looks at the pages in a phone-sized window. Screenshots of each page go to the output directory.
//   node console_page.mjs <tenantd binary> <output directory>
// Needs TENANTD_TEST_PG_ENV (tests/support/pg_cluster.sh). Exit 0 pass, 1 fail, 77 skipped
// (only when /usr/bin/chromium is absent).
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";

import { Browser, TestServer, check, loadChromium, runBrowserTest } from "./support.mjs";

const [binary, outDir = process.cwd()] = process.argv.slice(2);
if (!binary) throw new Error("usage: console_page.mjs <tenantd binary> [output directory]");
mkdirSync(outDir, { recursive: true });
const chromium = loadChromium();
const adminToken = randomBytes(24).toString("hex");

const json = async (base, method, path, body, token = adminToken) => {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
};

// Three tenants; the first has an owner (signed in by the creation) who reads its users a known
// number of times.
async function seed(base) {
  const tenants = [["alpha_co", "Alpha Company"], ["beta_co", "Beta Company"], ["gamma_co", "Gamma Company"]];
  let ownerToken;
  for (const [id, name] of tenants) {
    const owner = id === "alpha_co"
      ? { owner: { email: "owner@alpha.test", password: "console-test-Pa55word!", first_name: "Ada", last_name: "Owner" } }
      : {};
    const r = await json(base, "POST", "/tenants", { id, name, ...owner });
    check(r.status === 201, `tenant ${id} created (${r.status})`);
    if (r.body.token) ownerToken = r.body.token;  // the owner's first session
  }
  check(Boolean(ownerToken), "creating alpha_co with an owner signed the owner in");
  for (let i = 0; i < 7; ++i) {
    const r = await json(base, "GET", "/api/users", undefined, ownerToken);
    check(r.status === 200, `GET /api/users as the owner (${i + 1})`);
  }
  const backup = await json(base, "POST", "/admin/tenants/alpha_co/backup", {});
  check(backup.status === 201, `a backup of alpha_co is written (${backup.status})`);
  return backup.body.backup;
}

async function checkHttp(base) {
  const page = await fetch(`${base}/console`);
  check(page.status === 200 && page.headers.get("content-type").startsWith("text/html"), "GET /console is HTML");
  const policy = page.headers.get("content-security-policy") ?? "";
  check(/script-src 'self'(;|$)/.test(policy) && /style-src 'self'(;|$)/.test(policy) &&
        !policy.includes("unsafe") && /frame-ancestors 'none'/.test(policy) && /default-src 'none'/.test(policy),
        "GET /console has a strict Content-Security-Policy (own script and style only, nothing inline, no eval)");
  check(page.headers.get("x-frame-options") === "DENY", "GET /console has X-Frame-Options: DENY");
  check(page.headers.get("cache-control") === "no-cache", "the page itself is revalidated (Cache-Control: no-cache)");
  const html = await page.text();
  const assets = [...html.matchAll(/\/console\/assets\/(console\.[0-9a-f]{16}\.(js|css))/g)].map((m) => m[1]);
  check(assets.length === 2, `the page names its two assets by content hash (${assets.join(", ")})`);
  check(!/<script>|<style>|\son[a-z]+=|style="/.test(html), "the page has no inline script, style or handler");
  for (const name of assets) {
    const res = await fetch(`${base}/console/assets/${name}`);
    check(res.status === 200 && res.headers.get("cache-control") === "public, max-age=31536000, immutable",
          `${name} is served with a year-long immutable cache`);
  }
  check((await fetch(`${base}/console/assets/console.js`)).status === 404, "an asset without its hash is 404");
}

async function shot(page, name) {
  const path = join(outDir, `console_${name}.png`);
  await page.screenshot({ path, fullPage: true });
  console.log(`screenshot: ${path}`);
}

// The move paths this server cannot take (it has one database server and no mover role): the
// browser's answers to GET /admin/servers, GET /admin/moves and POST /admin/tenants/beta_co/move
// are stubbed with the shapes of docs/openapi.json, and GET /admin/tenants says gamma_co is one
// schema version behind. Checks the dialog shows the API's 409 detail (as text) and links to the
// servers page on 202, the moves as steps, finished ones with their freeze or error, the 2 s
// polling while a move runs and its end, and the migration of the tenant behind.
async function checkMovesStubbed(page, base, version) {
  const now = Date.now();
  const iso = (ago) => new Date(now - ago).toISOString();
  const eu2 = { name: "eu-2", host: "10.0.0.7", port: 5432, state: "draining", tenants: 12, weight: 2, max_tenants: 12 };
  const running = { id: "5b1c8e0e-2f4a-4c77-9a51-0c3f7f1d2a10", tenant_id: "beta_co", from: "main", to: "eu-2",
    state: "catching_up", started_at: iso(65_000), updated_at: iso(1_000), attempts: 1, keep_source: false };
  const finished = [
    { id: "6b1c8e0e-2f4a-4c77-9a51-0c3f7f1d2a11", tenant_id: "alpha_co", from: "eu-2", to: "main", state: "done",
      started_at: iso(600_000), updated_at: iso(596_000), freeze_ms: 42.7, attempts: 1, keep_source: false, finished_at: iso(596_000) },
    { id: "7b1c8e0e-2f4a-4c77-9a51-0c3f7f1d2a12", tenant_id: "gamma_co", from: "main", to: "eu-2", state: "aborted",
      started_at: iso(900_000), updated_at: iso(880_000), attempts: 3, keep_source: false, finished_at: iso(880_000),
      error: "<b>cut-over</b> abandoned 3 times: writes held past MOVE_FREEZE_MAX_MS" },
  ];
  let moveItems = [];
  let moveGets = 0;
  let posts = 0;
  const reply = (route, status, body, type = "application/json") =>
    route.fulfill({ status, contentType: type, body: JSON.stringify(body) });
  await page.route(`${base}/admin/servers`, async (route) => {
    const real = await (await route.fetch()).json();
    return reply(route, 200, { items: [...real.items, eu2] });
  });
  await page.route(`${base}/admin/moves`, (route) => { moveGets++; return reply(route, 200, { items: moveItems }); });
  await page.route(`${base}/admin/tenants`, async (route) => {
    const real = await (await route.fetch()).json();
    for (const t of real.items) if (t.id === "gamma_co") t.schema_version = version - 1;
    return reply(route, 200, real);
  });
  await page.route(`${base}/admin/tenants/beta_co/move`, (route) => {
    const body = route.request().postDataJSON();
    if (++posts === 1) {
      return reply(route, 409, { type: "about:blank", title: "Conflict", status: 409, code: "move_unavailable",
        detail: "moves are not configured: set <i>MOVE_DATABASE_USERNAME</i>", request_id: "r1" }, "application/problem+json");
    }
    moveItems = [{ ...running, to: body.to, state: "copying", started_at: new Date().toISOString() }, ...finished];
    return reply(route, 202, moveItems[0]);
  });

  await page.evaluate(() => { location.hash = "#/tenants/beta_co"; });
  await page.locator("#tenant-title").filter({ hasText: "beta_co" }).waitFor({ timeout: 10_000 });
  await page.click('#tenant-actions [data-action="move"]');
  await page.locator("#move-dialog").waitFor({ state: "visible", timeout: 10_000 });
  const options = await page.locator("#move-to option").allInnerTexts();
  check(options.length === 1 && options[0].startsWith("eu-2 (10.0.0.7:5432, draining, 12 of 12 tenants)"),
        `the dialog offers the other server only (${options.join(" | ")})`);
  check(await page.evaluate(() => document.activeElement?.id) === "move-to", "focus is on the server list");
  await page.click("#move-ok");
  const moveError = page.locator("#move-error");
  await moveError.filter({ hasText: "cannot start" }).waitFor({ timeout: 10_000 });
  const errorText = (await moveError.innerText()).trim();
  check(errorText === "This move cannot start: moves are not configured: set <i>MOVE_DATABASE_USERNAME</i>" &&
        await moveError.locator("i").count() === 0, `a 409 move_unavailable shows its detail, as text ("${errorText}")`);
  check(await page.locator("#move-dialog").isVisible() && await page.locator("#move-ok").isEnabled(),
        "the dialog stays open to try again or cancel");
  await page.click("#move-ok");
  const started = page.locator("#move-done");
  await started.waitFor({ state: "visible", timeout: 10_000 });
  check(/Move of beta_co from main to eu-2 started \(copying\)/.test(await started.innerText()) &&
        (await moveError.innerText()).trim() === "" && await page.locator("#move-ok").isHidden(),
        "on 202 the dialog says the move started");
  check(await page.evaluate(() => document.activeElement?.getAttribute("href")) === "#/servers",
        "focus is on the link to the servers page");
  await page.keyboard.press("Enter");
  await page.locator("#move-dialog").waitFor({ state: "hidden", timeout: 10_000 });
  await page.locator('#moves-active tbody tr').first().waitFor({ timeout: 10_000 });
  check(page.url().endsWith("#/servers"), "the link opens the servers page");

  const eu2Row = await page.locator('#servers-table tbody tr[data-server="eu-2"] td').allInnerTexts();
  check(eu2Row[1] === "12 / 12" && eu2Row[6] === "10.0.0.7:5432" && eu2Row[7] === "draining" && eu2Row[8] === "2",
        `eu-2: 12 / 12 tenants, 10.0.0.7:5432, draining, weight 2 (${eu2Row.join(" | ")})`);
  moveItems = [{ ...running }, ...finished];  // the next poll: catching up, started 65 s ago
  await page.locator('#moves-active li[aria-current="step"]').filter({ hasText: "catching up" }).waitFor({ timeout: 5_000 });
  const active = await page.locator("#moves-active tbody tr td").allInnerTexts();
  check(active[0] === "beta_co" && active[1] === "main → eu-2" && /^1 min \d+ s$/.test(active[3]) && active[4] === "1",
        `the move in progress: beta_co, main → eu-2, elapsed ${active[3]}, 1 attempt`);
  check(await page.locator("#moves-active li.past").allInnerTexts().then((t) => t.join(",")) === "copying" &&
        await page.locator("#moves-active li.next").count() === 2, "its steps: copying done, catching up current, 2 to come");
  const recent = await page.locator("#moves-recent tbody tr").allInnerTexts();
  check(recent.length === 2 && recent[0].includes("done") && recent[0].includes("writes held 43 ms") &&
        recent[1].includes("aborted") && recent[1].includes("<b>cut-over</b> abandoned 3 times"),
        "finished moves: done with the writes held, aborted with its error as text");
  check(await page.locator("#moves-recent b").count() === 0, "no markup from the API is rendered");
  check(/1 in progress/.test(await page.locator("#moves-summary").innerText()), "the summary counts 1 move in progress");
  const migration = await page.locator('#migrations-table tbody tr[data-server="main"]');
  check(await migration.getAttribute("class") === "behind" &&
        (await migration.locator(".chip.behind").innerText()) === `v${version - 1}: 1` &&
        (await migration.locator("td").nth(3).innerText()).startsWith("gamma_co"),
        "migrations: gamma_co, one version behind, is highlighted and named");
  await shot(page, "servers_moves");

  const before = moveGets;
  const pollStart = Date.now();
  while (moveGets - before < 2 && Date.now() - pollStart < 8_000) await page.waitForTimeout(100);  // two polls at 2 s
  const pollTook = Date.now() - pollStart;
  check(moveGets - before >= 2, `GET /admin/moves is polled every 2 s while a move runs (2 polls in ${pollTook} ms)`);
  moveItems = [{ ...running, state: "done", freeze_ms: 12.5, finished_at: new Date().toISOString() }, ...finished];
  await page.locator("#moves-active-wrap").waitFor({ state: "hidden", timeout: 5_000 });
  check((await page.locator("#moves-recent tbody tr").first().innerText()).includes("writes held 13 ms"),
        "the finished move moves to the finished list");
  await page.waitForTimeout(500);  // the page's one refresh once the last move finished
  const after = moveGets;
  await page.waitForTimeout(4_500);
  check(moveGets - after <= 1, `polling stops when no move is in progress (${moveGets - after} in 4.5 s, the 10 s refresh aside)`);
  await page.unrouteAll();
  // Back to the real server: no moves.
  await page.evaluate(() => { location.hash = "#/tenants"; });
  await page.locator("#tenants-view").waitFor({ state: "visible" });
}

async function checkPage(base, backupName, keep) {
  const browser = keep(await Browser.launch(chromium, base));
  const { page, foreign, problems } = browser;
  await page.goto(`${base}/console`, { waitUntil: "load" });

  // A wrong token: a clear error, nothing else shown. Typed and sent with the keyboard.
  await page.keyboard.type("not-the-admin-token");
  await page.keyboard.press("Enter");
  const error = page.locator("#signin-error");
  await error.filter({ hasText: "not accepted" }).waitFor({ timeout: 10_000 });
  check(true, `a wrong token shows "${(await error.innerText()).trim()}"`);
  check(await page.locator("#tenants-view").isHidden(), "with a wrong token no tenant is shown");
  await shot(page, "wrong_token");

  await page.fill("#token", adminToken);
  await page.keyboard.press("Enter");
  const rows = page.locator("#tenants-table tbody tr");
  await rows.nth(2).waitFor({ timeout: 10_000 });
  check(page.url().endsWith("#/tenants") && !page.url().includes(adminToken), "signed in; the token is not in the URL");
  const stored = await page.evaluate(() => JSON.stringify({ l: { ...localStorage }, s: { ...sessionStorage }, c: document.cookie }));
  check(!stored.includes(adminToken), "the token is not in local storage, session storage or a cookie");

  // The figures match the admin API.
  const api = (await json(base, "GET", "/admin/tenants")).body.items;
  const used = (await json(base, "GET", "/admin/usage")).body;
  const alpha = used.tenants.find((t) => t.tenant_id === "alpha_co");
  check(alpha && alpha.requests === 7 && used.tenants.length === 1, "GET /admin/usage counts alpha_co's 7 requests, no other tenant's");
  check(await rows.count() === api.length, `the table lists all ${api.length} tenants`);
  for (const t of api) {
    const row = page.locator(`#tenants-table tbody tr[data-tenant="${t.id}"]`);
    const cells = await row.locator("td").allInnerTexts();
    check(cells[0].includes(t.id) && cells[0].includes(t.name) && cells[1].trim() === t.status &&
          cells[2].trim() === t.server && cells[3].trim() === String(t.schema_version),
          `row ${t.id}: name, status ${t.status}, server ${t.server}, schema ${t.schema_version}`);
    check(cells[7].trim() === "0", `row ${t.id}: no errors`);
  }
  const alphaCells = await page.locator('#tenants-table tbody tr[data-tenant="alpha_co"] td').allInnerTexts();
  check(alphaCells[5].trim() === (7 / 300).toFixed(2), `alpha_co's req/s over 5 minutes is 7/300 (${alphaCells[5]})`);
  await shot(page, "tenants");

  // Search and status filter.
  await page.fill("#search", "beta");
  check(await rows.count() === 1 && (await rows.first().getAttribute("data-tenant")) === "beta_co", "search 'beta' leaves beta_co");
  await page.fill("#search", "");
  await page.selectOption("#status-filter", "suspended");
  check(await rows.count() === 0, "no tenant is suspended yet");
  await page.selectOption("#status-filter", "");
  // Sorting by tenant id, descending after a second click.
  await page.click('#tenants-table th[data-key="id"] button');
  check((await rows.first().getAttribute("data-tenant")) === "gamma_co", "sorting by tenant descending puts gamma_co first");
  await page.click('#tenants-table th[data-key="id"] button');
  check((await rows.first().getAttribute("data-tenant")) === "alpha_co", "and ascending puts alpha_co first");

  // One tenant: facts, a chart, the backup.
  await page.click('#tenants-table a[href="#/tenants/alpha_co"]');
  await page.locator("#tenant-title").filter({ hasText: "alpha_co" }).waitFor({ timeout: 10_000 });
  const facts = await page.locator("#tenant-facts").innerText();
  check(/Members\s+1\b/.test(facts) && /Live sessions\s+1\b/.test(facts) && /Server\s+main\b/.test(facts),
        "alpha_co shows 1 member, 1 live session, server main");
  check(/Requests \(last hour\)\s+7\b/.test(facts) && /Errors \(last hour\)\s+0\b/.test(facts),
        "alpha_co shows the 7 requests its owner made and no error (GET /admin/usage)");
  const line = page.locator("#chart-requests svg path.line");
  await line.waitFor({ timeout: 10_000 });
  const d = await line.getAttribute("d");
  check(/^M[\d.]+,[\d.]+(L[\d.]+,[\d.]+)+$/.test(d ?? ""), "the requests chart draws a line through the minutes");
  check((await page.locator("#backups-table tbody").innerText()).includes(backupName), `the backup ${backupName} is listed`);
  await shot(page, "tenant");

  // Suspend through the dialog, which names the tenant; the API reflects it; then resume.
  await page.click('#tenant-actions [data-action="suspend"]');
  const dialog = page.locator("#confirm");
  await dialog.waitFor({ state: "visible" });
  check((await page.locator("#confirm-title").innerText()).includes("alpha_co"), "the confirmation names the tenant");
  await page.click("#confirm-cancel");
  check((await json(base, "GET", "/admin/tenants/alpha_co")).body.status === "active", "cancel changes nothing");
  await page.click('#tenant-actions [data-action="suspend"]');
  await page.click("#confirm-ok");
  await page.locator("#tenant-title .badge").filter({ hasText: "suspended" }).waitFor({ timeout: 10_000 });
  check((await json(base, "GET", "/admin/tenants/alpha_co")).body.status === "suspended", "the API says alpha_co is suspended");
  await page.click('#tenant-actions [data-action="resume"]');
  await page.click("#confirm-ok");
  await page.locator("#tenant-title .badge").filter({ hasText: "active" }).waitFor({ timeout: 10_000 });
  check((await json(base, "GET", "/admin/tenants/alpha_co")).body.status === "active", "the API says alpha_co is active again");
  // Delete asks for the id to be typed.
  await page.click('#tenant-actions [data-action="delete"]');
  check(await page.locator("#confirm-ok").isDisabled(), "delete stays disabled until the tenant id is typed");
  await page.click("#confirm-cancel");

  // Move…: this server has only `main`, so the dialog names the tenant, offers no server and
  // says so; nothing is sent. Opened and closed with the keyboard.
  const serversApi = (await json(base, "GET", "/admin/servers")).body.items;
  check(serversApi.length === 1 && serversApi[0].name === "main", "GET /admin/servers lists main only");
  const moveButton = page.locator('#tenant-actions [data-action="move"]');
  check(await moveButton.isEnabled(), "Move… is offered for an active tenant");
  await moveButton.focus();
  await page.keyboard.press("Enter");
  const moveDialog = page.locator("#move-dialog");
  await moveDialog.waitFor({ state: "visible", timeout: 10_000 });
  check((await page.locator("#move-title").innerText()).includes("alpha_co") &&
        (await page.locator("#move-text").innerText()).includes("main"), "the move dialog names the tenant and its server");
  check(await page.locator("#move-to option").count() === 0 && await page.locator("#move-to-row").isHidden(),
        "the server list offers no other server");
  const none = (await page.locator("#move-none").innerText()).trim();
  check(await page.locator("#move-none").isVisible() && /no other database server/.test(none),
        `the dialog says there is no other server ("${none}")`);
  check(await page.locator("#move-ok").isDisabled(), "the move cannot be started");
  check(await page.evaluate(() => document.activeElement?.id) === "move-cancel", "focus is on Cancel");
  await shot(page, "move_dialog");
  await page.keyboard.press("Escape");
  await moveDialog.waitFor({ state: "hidden", timeout: 10_000 });
  check((await json(base, "GET", "/admin/moves")).body.items.length === 0, "no move was started");
  check((await json(base, "GET", "/admin/tenants/alpha_co")).body.server === "main", "alpha_co is still on main");

  // Servers.
  await page.click('#nav a[data-section="servers"]');
  const server = page.locator("#servers-table tbody tr");
  await server.first().waitFor({ timeout: 10_000 });
  const cells = await server.first().locator("td").allInnerTexts();
  check(cells[0] === "main" && cells[1] === "3", `the servers page shows main with 3 tenants (${cells.join(" | ")})`);
  // The table is GET /admin/servers: its servers, tenant counts, address, state and weight.
  check(await server.count() === serversApi.length, `the servers table lists the ${serversApi.length} server(s) of GET /admin/servers`);
  const main = (await json(base, "GET", "/admin/servers")).body.items[0];
  check(cells[1] === String(main.tenants) && cells[6] === `${main.host}:${main.port}` && cells[7] === main.state &&
        cells[8] === String(main.weight),
        `main: ${main.tenants} tenants, ${main.host}:${main.port}, ${main.state}, weight ${main.weight} as the API says`);
  // Moves: none on this server (GET /admin/moves is empty), no tables of moves.
  const moveSummary = page.locator("#moves-summary");
  await moveSummary.filter({ hasText: /no moves/i }).waitFor({ timeout: 10_000 });
  check(await page.locator("#moves-active-wrap").isHidden() && await page.locator("#moves-recent-wrap").isHidden(),
        `the moves section says "${(await moveSummary.innerText()).trim()}" and lists no move`);
  // Migrations: every tenant of main at the newest schema version.
  const version = api[0].schema_version;
  const migration = await page.locator('#migrations-table tbody tr[data-server="main"] td').allInnerTexts();
  check(migration[1].trim() === `v${version}: 3` && migration[2].startsWith(`3 of 3 at v${version}`) && migration[3].trim() === "none",
        `migrations: main has 3 tenants at v${version}, none behind (${migration.join(" | ")})`);
  await shot(page, "servers");

  await checkMovesStubbed(page, base, version);

  // A phone-sized window: nothing wider than the screen but the scrolling tables.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.click('#nav a[data-section="tenants"]');
  await rows.nth(2).waitFor({ timeout: 10_000 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, `at 390 px the page does not scroll sideways (${overflow} px)`);
  await shot(page, "tenants_phone");
  await page.click('#nav a[data-section="servers"]');
  await page.locator("#moves-summary").filter({ hasText: /no moves/i }).waitFor({ timeout: 10_000 });
  const serversOverflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(serversOverflow <= 0, `at 390 px the servers page does not scroll sideways (${serversOverflow} px)`);
  await shot(page, "servers_phone");

  // Signing out forgets the token.
  await page.click("#signout");
  await page.locator("#signin-view").waitFor({ state: "visible" });
  check(await page.locator("#tenants-view").isHidden(), "signed out: the tenants are gone");

  check(foreign.length === 0, `nothing requested from another origin${foreign.length ? ": " + foreign.join(", ") : ""}`);
  // Chromium logs the wrong token's 401 and the stubbed move's 409 as failed loads.
  const real = problems.filter((p) => !/status of (401 \(Unauthorized\)|409 \(Conflict\))/.test(p));
  check(real.length === 0, `no console errors or CSP violations${real.length ? ": " + real.join(" | ") : ""}`);
}

await runBrowserTest(new TestServer(binary, "console"), { ADMIN_TOKEN: adminToken }, async (server, keep) => {
  const backupName = await seed(server.base);
  await checkHttp(server.base);
  await checkPage(server.base, backupName, keep);
});
