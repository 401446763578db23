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
  const real = problems.filter((p) => !/status of 401/.test(p));  // the wrong token's 401, logged by Chromium
  check(real.length === 0, `no console errors or CSP violations${real.length ? ": " + real.join(" | ") : ""}`);
}

await runBrowserTest(new TestServer(binary, "console"), { ADMIN_TOKEN: adminToken }, async (server, keep) => {
  const backupName = await seed(server.base);
  await checkHttp(server.base);
  await checkPage(server.base, backupName, keep);
});
