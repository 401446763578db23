// Browser test of the /docs page: starts a real tenantd on a fresh master database of the
// private test cluster, opens /docs in headless Chromium (tests/browser/support.mjs), checks
// that the endpoints are listed and that "Try it out" -> Execute on GET / shows a 200, and
// saves a screenshot.
//   node docs_page.mjs <tenantd binary> <screenshot.png>
// Needs TENANTD_TEST_PG_ENV (tests/support/pg_cluster.sh). Exit 0 pass, 1 fail, 77 skipped
// (only when /usr/bin/chromium is absent).
import { join } from "node:path";

import { Browser, TestServer, check, loadChromium, runBrowserTest } from "./support.mjs";

const [binary, screenshot = join(process.cwd(), "docs_page.png")] = process.argv.slice(2);
if (!binary) throw new Error("usage: docs_page.mjs <tenantd binary> [screenshot.png]");
const chromium = loadChromium();

async function checkHttp(base) {
  const doc = await fetch(`${base}/openapi.json`);
  check(doc.status === 200 && doc.headers.get("content-type") === "application/json", "GET /openapi.json is application/json");
  check((await doc.json()).openapi.startsWith("3.1"), "the document is OpenAPI 3.1");
  const page = await fetch(`${base}/docs`);
  check(page.status === 200 && page.headers.get("content-type").startsWith("text/html"), "GET /docs is HTML");
  const policy = page.headers.get("content-security-policy") ?? "";
  check(/script-src 'self'(;|$)/.test(policy) && !policy.includes("unsafe-eval") && /frame-ancestors 'none'/.test(policy),
        "GET /docs has a Content-Security-Policy: own scripts only, no eval, no framing");
  check(page.headers.get("x-frame-options") === "DENY", "GET /docs has X-Frame-Options: DENY");
  const css = await fetch(`${base}/docs/swagger-ui.css`);
  check(css.status === 200 && css.headers.get("content-type").startsWith("text/css") &&
        css.headers.get("cache-control") === "public, max-age=3600", "assets are cacheable text/css");
  check((await fetch(`${base}/docs/nope.js`)).status === 404, "an unknown /docs file is 404");
}

async function checkPage(base, keep) {
  const browser = keep(await Browser.launch(chromium, base));
  const { page, foreign, problems } = browser;

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

await runBrowserTest(new TestServer(binary, "docs"), {}, async (server, keep) => {
  await checkHttp(server.base);
  await checkPage(server.base, keep);
});
