// tenantd operator console. Everything it shows comes from the admin API (/admin/...), called
// with the ADMIN_TOKEN the operator types in. The token lives in this closure only: never in a
// URL, a cookie or web storage, so reloading the page signs out and no other page can use it.
"use strict";

(() => {
  const FLEET_WINDOW_MINUTES = 5;   // req/s, p99 and errors in the tenants table
  const CHART_WINDOW_MINUTES = 60;  // the charts of one tenant
  const REFRESH_MS = 10000;
  const MOVES_POLL_MS = 2000;       // /admin/moves while a move is in progress on the servers page
  const RECENT_MOVES = 10;          // finished moves listed
  const MOVE_STEPS = ["copying", "catching_up", "cutover", "done"];

  let token = null;
  let tenants = [];       // GET /admin/tenants items
  let usageByTenant = new Map();  // tenant id -> figures over the fleet window
  let sort = { key: "id", dir: 1 };
  let refreshTimer = null;
  let currentTenant = null;
  let servers = [];       // GET /admin/servers items (servers page and the move dialog)
  let moves = [];         // GET /admin/moves items, newest first
  let movesTimer = null;

  const $ = (id) => document.getElementById(id);
  const el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c);
    return node;
  };

  // --- the admin API ------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, problem) {
      super(problem && problem.detail ? problem.detail : `HTTP ${status}`);
      this.status = status;
      this.code = problem && problem.code;
      // invalid_input names its fields: "to: no database server of that name".
      this.fields = (problem && Array.isArray(problem.errors) ? problem.errors : [])
        .map((f) => `${f.field}: ${f.message}`);
    }
  }

  async function api(method, path, body) {
    const headers = { Authorization: `Bearer ${token}`, Accept: "application/json" };
    const init = { method, headers, cache: "no-store", credentials: "omit" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const res = await fetch(path, init);
    const text = await res.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch { data = null; }
    }
    if (!res.ok) {
      if (res.status === 401 && token !== null) signOut("The admin token is no longer accepted: sign in again.");
      throw new ApiError(res.status, data);
    }
    return data;
  }

  // GET /admin/usage for the last `minutes` minutes (whole ones, to the current one included):
  // `items` per tenant and minute, `tenants` summed per tenant (p99 from the merged histogram).
  async function usage(minutes, tenant) {
    const minute = 60000;
    const to = Math.floor(Date.now() / minute) * minute + minute;
    const iso = (ms) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
    const query = new URLSearchParams({ from: iso(to - minutes * minute), to: iso(to) });
    if (tenant) query.set("tenant", tenant);
    return api("GET", `/admin/usage?${query}`);
  }

  // Per-tenant figures of a usage answer: requests per second over the window, errors, p99,
  // the most connections held and the largest size sampled, last activity.
  function summarize(data, minutes) {
    const out = new Map();
    for (const t of data.tenants || []) {
      out.set(t.tenant_id, {
        requests: t.requests, rps: t.requests / (minutes * 60), errors: t.errors_4xx + t.errors_5xx,
        p99: t.requests > 0 ? t.latency_ms.p99 : null, connections: t.connections_max,
        size: t.db_size_bytes, last_activity: t.last_activity, db_time_ms: t.db_time_ms,
      });
    }
    return out;
  }

  // --- formatting ----------------------------------------------------------------------------

  const fmtBytes = (n) => {
    if (n == null) return "–";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
  };
  const fmtNum = (n, digits = 0) => (n == null ? "–" : n.toLocaleString("en-US", { maximumFractionDigits: digits }));
  const fmtMs = (n) => (n == null ? "–" : `${n < 10 ? n.toFixed(1) : Math.round(n)} ms`);
  const fmtTime = (iso) => {
    if (!iso) return "–";
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return iso;
    const ago = (Date.now() - d.getTime()) / 1000;
    if (ago < 90) return `${Math.max(0, Math.round(ago))} s ago`;
    if (ago < 5400) return `${Math.round(ago / 60)} min ago`;
    return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
  };
  const fmtDuration = (ms) => {
    if (ms == null || Number.isNaN(ms)) return "–";
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
    return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  };
  const badge = (status) => el("span", { class: `badge ${status}`, text: status });

  function say(message, kind = "") {
    const s = $("status");
    s.textContent = message;
    s.className = `status ${kind}`;
  }

  // --- sign in / out -------------------------------------------------------------------------

  async function signIn(event) {
    event.preventDefault();
    const input = $("token");
    const candidate = input.value.trim();
    const error = $("signin-error");
    error.textContent = "";
    if (!candidate) {
      error.textContent = "Enter the admin token.";
      input.focus();
      return;
    }
    try {
      const res = await fetch("/admin/tenants", {
        headers: { Authorization: `Bearer ${candidate}`, Accept: "application/json" },
        cache: "no-store", credentials: "omit",
      });
      if (res.status === 401) throw new Error("The admin token was not accepted.");
      if (res.status === 403) throw new Error("Operator routes are off on this server (ADMIN_TOKEN is not set).");
      if (!res.ok) throw new Error(`The server answered ${res.status}.`);
    } catch (e) {
      error.textContent = e instanceof TypeError ? "Cannot reach the server." : e.message;
      input.select();
      return;
    }
    token = candidate;
    input.value = "";
    $("signin-view").hidden = true;
    $("nav").hidden = false;
    $("signout").hidden = false;
    if (!location.hash || location.hash === "#/") location.hash = "#/tenants";
    else route();
  }

  function signOut(message) {
    token = null;
    tenants = [];
    usageByTenant = new Map();
    servers = [];
    moves = [];
    clearInterval(refreshTimer);
    refreshTimer = null;
    stopMovesPoll();
    if ($("move-dialog").open) $("move-dialog").close();
    if ($("confirm").open) $("confirm").close();
    for (const id of ["tenants-view", "tenant-view", "servers-view", "nav", "signout"]) $(id).hidden = true;
    $("signin-view").hidden = false;
    $("refreshed").textContent = "";
    say(message || "", message ? "bad" : "");
    $("token").focus();
  }

  // --- data ----------------------------------------------------------------------------------

  async function loadFleet() {
    const [list, data] = await Promise.all([api("GET", "/admin/tenants"), usage(FLEET_WINDOW_MINUTES)]);
    tenants = list.items;
    usageByTenant = summarize(data, FLEET_WINDOW_MINUTES);
    $("refreshed").textContent = `updated ${new Date().toLocaleTimeString()}`;
  }

  function fleetRow(t) {
    const u = usageByTenant.get(t.id) || {};
    return {
      id: t.id, name: t.name, status: t.status, server: t.server, schema_version: t.schema_version,
      size: u.size ?? null, rps: u.rps ?? 0, p99: u.p99 ?? null, errors: u.errors ?? 0,
      connections: u.connections ?? null, last_activity: u.last_activity ?? null,
    };
  }

  // --- tenants table -------------------------------------------------------------------------

  function renderTenants() {
    const q = $("search").value.trim().toLowerCase();
    const status = $("status-filter").value;
    let rows = tenants.map(fleetRow).filter((r) =>
      (!status || r.status === status) &&
      (!q || r.id.toLowerCase().includes(q) || (r.name || "").toLowerCase().includes(q)));
    const { key, dir } = sort;
    rows.sort((a, b) => {
      const x = a[key], y = b[key];
      if (x == null && y == null) return a.id < b.id ? -1 : 1;
      if (x == null) return 1;
      if (y == null) return -1;
      if (x < y) return -dir;
      if (x > y) return dir;
      return a.id < b.id ? -1 : 1;
    });
    for (const th of document.querySelectorAll("#tenants-table th")) {
      if (th.dataset.key === key) th.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
      else th.removeAttribute("aria-sort");
    }
    const body = document.querySelector("#tenants-table tbody");
    body.replaceChildren(...rows.map((r) => el("tr", { "data-tenant": r.id },
      el("td", {}, el("a", { href: `#/tenants/${encodeURIComponent(r.id)}`, text: r.id }),
        el("span", { class: "name", text: r.name || "" })),
      el("td", {}, badge(r.status)),
      el("td", { text: r.server || "–" }),
      el("td", { class: "num", text: fmtNum(r.schema_version) }),
      el("td", { class: "num", text: fmtBytes(r.size) }),
      el("td", { class: "num", text: fmtNum(r.rps, 2) }),
      el("td", { class: "num", text: fmtMs(r.p99) }),
      el("td", { class: "num", text: fmtNum(r.errors) }),
      el("td", { class: "num", text: fmtNum(r.connections) }),
      el("td", { text: fmtTime(r.last_activity) }))));
    $("tenant-count").textContent = `${rows.length} of ${tenants.length} tenants`;
    $("window-note").textContent =
      `Req/s, p99 and errors over the last ${FLEET_WINDOW_MINUTES} minutes; size and connections as last sampled.`;
  }

  function sortBy(key) {
    sort = { key, dir: sort.key === key ? -sort.dir : (["id", "status", "server"].includes(key) ? 1 : -1) };
    renderTenants();
  }

  // --- one tenant ----------------------------------------------------------------------------

  function fact(term, value) {
    return el("div", {}, el("dt", { text: term }), el("dd", { text: value }));
  }

  async function showTenant(id) {
    currentTenant = id;
    let t, data;
    try {
      [t, data] = await Promise.all([api("GET", `/admin/tenants/${encodeURIComponent(id)}`),
        usage(CHART_WINDOW_MINUTES, id)]);
    } catch (e) {
      if (e.status === 404) say(`No tenant "${id}".`, "bad");
      else if (e.status !== 401) say(`Could not load tenant "${id}": ${e.message}`, "bad");
      return;
    }
    if (currentTenant !== id) return;
    const u = summarize(data, CHART_WINDOW_MINUTES).get(id) || {};
    $("tenant-title").replaceChildren(`${t.id} `, badge(t.status));
    $("tenant-facts").replaceChildren(
      fact("Name", t.name || "–"), fact("Server", t.server || "–"), fact("Database", t.database || "–"),
      fact("Schema version", fmtNum(t.schema_version)), fact("Members", fmtNum(t.members)),
      fact("Live sessions", fmtNum(t.sessions)), fact("Size", fmtBytes(u.size ?? null)),
      fact("Requests (last hour)", fmtNum(u.requests ?? 0)), fact("Errors (last hour)", fmtNum(u.errors ?? 0)),
      fact("Last activity", fmtTime(u.last_activity ?? null)), fact("Created", fmtTime(t.created_at)));
    const act = (name) => document.querySelector(`#tenant-actions [data-action="${name}"]`);
    act("suspend").disabled = t.status !== "active";
    act("resume").disabled = t.status !== "suspended";
    act("backup").disabled = !(t.status === "active" || t.status === "suspended");
    act("move").disabled = !(t.status === "active" || t.status === "suspended");
    act("delete").disabled = !["active", "suspended", "failed"].includes(t.status);
    const series = minuteSeries(data.items || [], id);
    chart("chart-requests", series.map((m) => [m.t, m.requests]), (v) => fmtNum(v));
    chart("chart-latency", series.map((m) => [m.t, m.p99]), (v) => fmtNum(v, 1));
    chart("chart-dbtime", series.map((m) => [m.t, m.db_time_ms]), (v) => fmtNum(v, 1));
    const backups = document.querySelector("#backups-table tbody");
    const files = t.backups || [];
    backups.replaceChildren(...(files.length ? files.map((b) => el("tr", {},
      el("td", { text: b.backup }), el("td", { class: "num", text: fmtBytes(b.bytes) }),
      el("td", { text: fmtTime(b.modified_at) })))
      : [el("tr", {}, el("td", { colspan: "3", class: "muted", text: "No backups in BACKUP_DIR." }))]));
  }

  // One point per minute of the chart window (minutes without traffic are 0, latency null).
  function minuteSeries(rows, id) {
    const byMinute = new Map();
    for (const r of rows) if (r.tenant_id === id) byMinute.set(new Date(r.minute).getTime(), r);
    const end = Math.floor(Date.now() / 60000) * 60000;
    const out = [];
    for (let t = end - (CHART_WINDOW_MINUTES - 1) * 60000; t <= end; t += 60000) {
      const r = byMinute.get(t);
      out.push({
        t, requests: r ? r.requests || 0 : 0, db_time_ms: r ? r.db_time_ms || 0 : 0,
        p99: r && r.requests > 0 ? r.latency_ms.p99 : null,
      });
    }
    return out;
  }

  // A line chart as SVG (no library): x = minutes, y from 0 to the largest value.
  function chart(figureId, points, fmt) {
    const figure = $(figureId);
    const ns = "http://www.w3.org/2000/svg";
    const svgEl = (tag, attrs = {}, text) => {
      const n = document.createElementNS(ns, tag);
      for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
      if (text != null) n.textContent = text;
      return n;
    };
    const W = 480, H = 180, L = 48, R = 8, T = 10, B = 24;
    const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, role: "img" });
    const values = points.filter(([, v]) => v != null).map(([, v]) => v);
    const max = Math.max(1, ...values);
    const x = (i) => L + (i / Math.max(1, points.length - 1)) * (W - L - R);
    const y = (v) => T + (1 - v / max) * (H - T - B);
    const caption = figure.querySelector("figcaption").textContent;
    svg.append(svgEl("title", {}, `${caption}: ${values.length ? `highest ${fmt(max)}` : "no data"}`));
    svg.append(svgEl("line", { class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B }));
    svg.append(svgEl("line", { class: "axis", x1: L, y1: T, x2: L, y2: H - B }));
    for (const v of [0, max / 2, max]) {
      svg.append(svgEl("text", { class: "tick", x: L - 6, y: y(v) + 4, "text-anchor": "end" }, fmt(v)));
    }
    if (points.length) {
      const label = (t) => new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      svg.append(svgEl("text", { class: "tick", x: L, y: H - 6 }, label(points[0][0])));
      svg.append(svgEl("text", { class: "tick", x: W - R, y: H - 6, "text-anchor": "end" },
        label(points[points.length - 1][0])));
    }
    if (!values.length) {
      svg.append(svgEl("text", { class: "empty", x: (L + W) / 2, y: H / 2, "text-anchor": "middle" }, "no requests"));
    } else {
      let d = "";
      let area = "";
      let first = null;
      let last = null;
      points.forEach(([, v], i) => {
        if (v == null) return;
        d += `${d ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
        if (first == null) first = i;
        last = i;
      });
      area = `${d}L${x(last).toFixed(1)},${y(0).toFixed(1)}L${x(first).toFixed(1)},${y(0).toFixed(1)}Z`;
      svg.append(svgEl("path", { class: "area", d: area }));
      svg.append(svgEl("path", { class: "line", d }));
      // The latest value as a dot, so that a single minute of data is visible too.
      svg.append(svgEl("circle", { class: "dot", cx: x(last).toFixed(1), cy: y(points[last][1]).toFixed(1), r: 3 }));
    }
    figure.querySelector("svg")?.remove();
    figure.append(svg);
  }

  // --- actions -------------------------------------------------------------------------------

  function confirmAction(title, text, typed) {
    const dialog = $("confirm");
    $("confirm-title").textContent = title;
    $("confirm-text").textContent = text;
    $("confirm-typed-row").hidden = !typed;
    const input = $("confirm-typed");
    input.value = "";
    const ok = $("confirm-ok");
    ok.disabled = Boolean(typed);
    input.oninput = () => { ok.disabled = input.value !== typed; };
    return new Promise((resolve) => {
      const finish = (answer) => {
        $("confirm-form").onsubmit = null;
        $("confirm-cancel").onclick = null;
        dialog.onclose = null;
        if (dialog.open) dialog.close();
        resolve(answer);
      };
      $("confirm-form").onsubmit = (e) => { e.preventDefault(); finish(!ok.disabled); };
      $("confirm-cancel").onclick = () => finish(false);
      dialog.onclose = () => finish(false);
      dialog.showModal();
      (typed ? input : $("confirm-cancel")).focus();
    });
  }

  async function runAction(action) {
    if (action === "move") return moveTenant();
    const id = currentTenant;
    const t = tenants.find((x) => x.id === id);
    const label = t && t.name ? `"${id}" (${t.name})` : `"${id}"`;
    const plans = {
      suspend: [`Suspend tenant ${id}?`, `Every request and login of tenant ${label} will answer 403 until it is resumed. Its data is untouched.`],
      resume: [`Resume tenant ${id}?`, `Tenant ${label} will serve requests again.`],
      backup: [`Back up tenant ${id}?`, `A backup of tenant ${label} (its database and members) is written to BACKUP_DIR.`],
      delete: [`Delete tenant ${id}?`, `The database of tenant ${label} is dropped. This cannot be undone except from a backup.`],
    };
    const [title, text] = plans[action];
    if (!(await confirmAction(title, text, action === "delete" ? id : null))) return;
    say(`${action}: ${id}…`);
    try {
      const path = `/admin/tenants/${encodeURIComponent(id)}`;
      if (action === "delete") await api("DELETE", path);
      else await api("POST", `${path}/${action}`, {});
      const done = { suspend: "Suspended", resume: "Resumed", backup: "Backed up", delete: "Deleted" };
      say(`${done[action]} tenant ${id}.`, "good");
    } catch (e) {
      if (e.status !== 401) say(`Could not ${action} tenant ${id}: ${e.message}`, "bad");
    }
    await refresh();
  }

  // --- moving a tenant -----------------------------------------------------------------------

  // The "Move…" dialog: the other servers (GET /admin/servers) in a <select>, then
  // POST /admin/tenants/:id/move. The API's reason is shown in the dialog on 400/409; on 202 it
  // links to the servers page, where the move shows with its progress.
  async function moveTenant() {
    const id = currentTenant;
    const t = tenants.find((x) => x.id === id);
    const from = (t && t.server) || "main";
    const dialog = $("move-dialog");
    const select = $("move-to");
    const ok = $("move-ok");
    const cancel = $("move-cancel");
    const none = $("move-none");
    const error = $("move-error");
    const doneNote = $("move-done");
    try {
      servers = (await api("GET", "/admin/servers")).items || [];
    } catch (e) {
      if (e.status !== 401) say(`Could not list the database servers: ${e.message}`, "bad");
      return;
    }
    if (currentTenant !== id) return;
    const others = servers.filter((s) => s.name !== from);
    $("move-title").textContent = `Move tenant ${id}?`;
    $("move-text").textContent =
      `Tenant ${t && t.name ? `"${id}" (${t.name})` : `"${id}"`} is on server ${from}. Its database is copied to ` +
      "the server chosen below while it keeps serving; its writes are held for a moment at the cut-over.";
    select.replaceChildren(...others.map((s) => {
      const limit = s.max_tenants == null ? "" : ` of ${fmtNum(s.max_tenants)}`;
      return el("option", { value: s.name, text: `${s.name} (${s.host}:${s.port}, ${s.state}, ${fmtNum(s.tenants)}${limit} tenants)` });
    }));
    $("move-to-row").hidden = others.length === 0;
    none.hidden = others.length > 0;
    none.textContent = others.length ? "" :
      `There is no other database server to move tenant ${id} to: ${from} is the only one (GET /admin/servers). ` +
      "Add a server first (POST /admin/servers or tenantd servers add).";
    error.textContent = "";
    doneNote.hidden = true;
    doneNote.replaceChildren();
    ok.hidden = false;
    ok.disabled = others.length === 0;
    cancel.textContent = "Cancel";

    const form = $("move-form");
    const finish = () => {
      form.onsubmit = null;
      cancel.onclick = null;
      dialog.onclose = null;
      if (dialog.open) dialog.close();
    };
    form.onsubmit = async (e) => {
      e.preventDefault();
      if (ok.disabled || !select.value) return;
      const to = select.value;
      ok.disabled = true;
      select.disabled = true;
      error.textContent = "";
      try {
        const move = await api("POST", `/admin/tenants/${encodeURIComponent(id)}/move`, { to });
        ok.hidden = true;
        cancel.textContent = "Close";
        const link = el("a", { href: "#/servers", text: "the servers page" });
        link.addEventListener("click", finish);
        doneNote.replaceChildren(`Move of ${id} from ${move.from} to ${move.to} started (${move.state}). ` +
          "Follow it on ", link, ".");
        doneNote.hidden = false;
        say(`Moving tenant ${id} from ${move.from} to ${move.to}.`, "good");
        link.focus();
      } catch (err) {
        if (err.status === 401) { finish(); return; }
        const why = [err.message, ...err.fields].join(" — ");
        const lead = err.code === "move_unavailable" ? "This move cannot start"
          : err.code === "move_in_progress" ? "A move of this tenant is already under way"
          : `The server refused the move (${err.status}${err.code ? ` ${err.code}` : ""})`;
        error.textContent = `${lead}: ${why}`;
        ok.disabled = false;
        select.focus();
      } finally {
        select.disabled = false;
      }
    };
    cancel.onclick = finish;
    dialog.onclose = finish;
    dialog.showModal();
    (others.length ? select : cancel).focus();
  }

  // --- servers -------------------------------------------------------------------------------

  const inProgress = (m) => m.state !== "done" && m.state !== "aborted";

  async function showServers() {
    try {
      const [list, moveList] = await Promise.all([api("GET", "/admin/servers"), api("GET", "/admin/moves")]);
      servers = list.items || [];
      moves = moveList.items || [];
    } catch (e) {
      if (e.status !== 401) say(`Could not load the servers and moves: ${e.message}`, "bad");
      return;
    }
    if (location.hash !== "#/servers") return;
    renderServers();
    renderMoves();
    renderMigrations();
    scheduleMovesPoll();
  }

  // Per server name: tenant counts, connections and size summed from the tenants list and usage.
  function serverAggregates() {
    const out = new Map();
    for (const t of tenants) {
      if (t.status === "deleted") continue;
      const name = t.server || "main";
      let s = out.get(name);
      if (!s) {
        s = { tenants: 0, active: 0, suspended: 0, connections: null, size: null, list: [] };
        out.set(name, s);
      }
      const u = usageByTenant.get(t.id) || {};
      s.tenants++;
      s.list.push(t);
      if (t.status === "active") s.active++;
      if (t.status === "suspended") s.suspended++;
      if (u.connections != null) s.connections = (s.connections || 0) + u.connections;
      if (u.size != null) s.size = (s.size || 0) + u.size;
    }
    return out;
  }

  function renderServers() {
    const agg = serverAggregates();
    const names = [...new Set([...servers.map((s) => s.name), ...agg.keys()])].sort();
    const byName = new Map(servers.map((s) => [s.name, s]));
    const body = document.querySelector("#servers-table tbody");
    body.replaceChildren(...names.map((name) => {
      const s = byName.get(name);
      const a = agg.get(name) || { tenants: 0, active: 0, suspended: 0, connections: null, size: null };
      const count = s ? s.tenants : a.tenants;
      const full = s && s.max_tenants != null && count >= s.max_tenants;
      return el("tr", { "data-server": name },
        el("td", { text: name }),
        el("td", { class: `num${full ? " full" : ""}`, text: s && s.max_tenants != null ? `${fmtNum(count)} / ${fmtNum(s.max_tenants)}` : fmtNum(count) }),
        el("td", { class: "num", text: fmtNum(a.active) }), el("td", { class: "num", text: fmtNum(a.suspended) }),
        el("td", { class: "num", text: fmtNum(a.connections) }), el("td", { class: "num", text: fmtBytes(a.size) }),
        el("td", { text: s ? `${s.host}:${s.port}` : "–" }),
        el("td", {}, s ? badge(s.state) : el("span", { class: "muted", text: "not listed" })),
        el("td", { class: "num", text: s ? fmtNum(s.weight) : "–" }));
    }));
  }

  // The steps copying → catching_up → cutover → done, the move's own marked as current.
  function moveSteps(state) {
    const at = MOVE_STEPS.indexOf(state);
    return el("ol", { class: "steps", "aria-label": `step ${at + 1} of ${MOVE_STEPS.length}: ${state}` },
      ...MOVE_STEPS.map((step, i) => {
        const item = el("li", { class: i < at ? "past" : i === at ? "current" : "next", text: step.replace("_", " ") });
        if (i === at) item.setAttribute("aria-current", "step");
        return item;
      }));
  }

  const tenantLink = (id) => el("a", { href: `#/tenants/${encodeURIComponent(id)}`, text: id });
  const fromTo = (m) => `${m.from} → ${m.to}`;
  const since = (iso, until) => {
    const start = new Date(iso).getTime();
    const end = until ? new Date(until).getTime() : Date.now();
    return Number.isNaN(start) || Number.isNaN(end) ? null : end - start;
  };

  function renderMoves() {
    const active = moves.filter(inProgress);
    const finished = moves.filter((m) => !inProgress(m)).slice(0, RECENT_MOVES);
    $("moves-summary").textContent = moves.length === 0 ? "No moves: no tenant has been moved between servers."
      : `${active.length ? `${active.length} in progress (updated every ${MOVES_POLL_MS / 1000} s)` : "No move in progress"}; ` +
        `${moves.length - active.length} finished${finished.length < moves.length - active.length ? `, the last ${finished.length} shown` : ""}.`;
    $("moves-active-wrap").hidden = active.length === 0;
    $("moves-recent-wrap").hidden = finished.length === 0;
    document.querySelector("#moves-active tbody").replaceChildren(...active.map((m) => el("tr", { "data-move": m.id },
      el("td", {}, tenantLink(m.tenant_id)), el("td", { text: fromTo(m) }), el("td", {}, moveSteps(m.state)),
      el("td", { class: "num", text: fmtDuration(since(m.started_at)) }), el("td", { class: "num", text: fmtNum(m.attempts) }),
      el("td", { class: m.error ? "wrap bad" : "muted", text: m.error || "–" }))));
    document.querySelector("#moves-recent tbody").replaceChildren(...finished.map((m) => el("tr", { "data-move": m.id },
      el("td", {}, tenantLink(m.tenant_id)), el("td", { text: fromTo(m) }), el("td", {}, badge(m.state)),
      el("td", { class: m.state === "aborted" ? "wrap bad" : "", text: m.state === "aborted"
        ? m.error || "aborted" : m.freeze_ms != null ? `writes held ${fmtMs(m.freeze_ms)}` : "–" }),
      el("td", { class: "num", text: fmtNum(m.attempts) }),
      el("td", { class: "num", text: fmtDuration(since(m.started_at, m.finished_at || m.updated_at)) }),
      el("td", { text: fmtTime(m.finished_at || m.updated_at) }))));
  }

  // Tenants per schema version on each server; those behind the newest version seen are named
  // (a running `tenantd migrate` shows as their number going down at each refresh).
  function renderMigrations() {
    const live = tenants.filter((t) => t.status !== "deleted");
    const newest = Math.max(0, ...live.map((t) => t.schema_version || 0));
    const agg = serverAggregates();
    const behindAll = live.filter((t) => (t.schema_version || 0) < newest).length;
    $("migrations-summary").textContent = live.length === 0 ? "No tenants."
      : behindAll === 0 ? `All ${fmtNum(live.length)} tenants are at schema version ${newest}, the newest seen.`
      : `${fmtNum(behindAll)} of ${fmtNum(live.length)} tenants are behind schema version ${newest}, the newest seen.`;
    const body = document.querySelector("#migrations-table tbody");
    body.replaceChildren(...[...agg.entries()].sort((x, y) => (x[0] < y[0] ? -1 : 1)).map(([name, s]) => {
      const versions = new Map();
      for (const t of s.list) versions.set(t.schema_version, (versions.get(t.schema_version) || 0) + 1);
      const chips = [...versions.entries()].sort((x, y) => (y[0] || 0) - (x[0] || 0)).map(([v, n]) =>
        el("span", { class: `chip${(v || 0) < newest ? " behind" : ""}`, text: `v${v == null ? "–" : v}: ${fmtNum(n)}` }));
      const behind = s.list.filter((t) => (t.schema_version || 0) < newest).sort((x, y) => (x.id < y.id ? -1 : 1));
      const migrated = s.list.length - behind.length;
      const shown = behind.slice(0, 8);
      const behindCell = el("td", { class: "wrap" });
      if (!behind.length) behindCell.append(el("span", { class: "muted", text: "none" }));
      shown.forEach((t, i) => {
        if (i) behindCell.append(", ");
        behindCell.append(tenantLink(t.id), el("span", { class: "muted", text: ` (v${t.schema_version ?? "–"})` }));
      });
      if (behind.length > shown.length) behindCell.append(` and ${fmtNum(behind.length - shown.length)} more`);
      return el("tr", { "data-server": name, class: behind.length ? "behind" : "" },
        el("td", { text: name }), el("td", { class: "chips" }, ...chips),
        el("td", { text: `${fmtNum(migrated)} of ${fmtNum(s.list.length)} at v${newest} (${Math.round((100 * migrated) / Math.max(1, s.list.length))} %)` }),
        behindCell);
    }));
  }

  // While the servers page is open and a move is in progress: GET /admin/moves every 2 s. When
  // the last one finishes, the whole page is refreshed once (tenant counts per server changed).
  function scheduleMovesPoll() {
    stopMovesPoll();
    if (token === null || location.hash !== "#/servers" || !moves.some(inProgress)) return;
    movesTimer = setTimeout(pollMoves, MOVES_POLL_MS);
  }

  function stopMovesPoll() {
    clearTimeout(movesTimer);
    movesTimer = null;
  }

  async function pollMoves() {
    movesTimer = null;
    if (token === null || location.hash !== "#/servers") return;
    const before = moves.filter(inProgress).length;
    try {
      moves = (await api("GET", "/admin/moves")).items || [];
    } catch (e) {
      if (e.status !== 401) say(`Could not load the moves: ${e.message}`, "bad");
      return;
    }
    if (token === null || location.hash !== "#/servers") return;
    renderMoves();
    if (moves.filter(inProgress).length < before) await refresh();
    else scheduleMovesPoll();
  }

  // --- routing -------------------------------------------------------------------------------

  function show(section) {
    for (const id of ["tenants-view", "tenant-view", "servers-view"]) $(id).hidden = id !== section;
    for (const a of document.querySelectorAll("#nav a")) {
      const current = section.startsWith(a.dataset.section.replace(/s$/, ""));
      if (current) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
  }

  async function refresh() {
    if (token === null) return;
    try {
      await loadFleet();
    } catch (e) {
      if (e.status !== 401) say(`Could not load the fleet: ${e.message}`, "bad");
      return;
    }
    const hash = location.hash;
    if (hash.startsWith("#/tenants/")) await showTenant(decodeURIComponent(hash.slice("#/tenants/".length)));
    else if (hash === "#/servers") await showServers();
    else renderTenants();
  }

  async function route() {
    if (token === null) return;
    say("");
    const hash = location.hash || "#/tenants";
    if (hash !== "#/servers") stopMovesPoll();
    if ($("move-dialog").open) $("move-dialog").close();
    if (hash.startsWith("#/tenants/")) show("tenant-view");
    else if (hash === "#/servers") show("servers-view");
    else show("tenants-view");
    $("main").focus();
    await refresh();
    clearInterval(refreshTimer);
    refreshTimer = setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_MS);
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("signin").addEventListener("submit", signIn);
    $("signout").addEventListener("click", () => signOut("Signed out."));
    $("search").addEventListener("input", renderTenants);
    $("status-filter").addEventListener("change", renderTenants);
    for (const th of document.querySelectorAll("#tenants-table th")) {
      th.querySelector("button").addEventListener("click", () => sortBy(th.dataset.key));
    }
    for (const b of document.querySelectorAll("#tenant-actions button")) {
      b.addEventListener("click", () => runAction(b.dataset.action));
    }
    window.addEventListener("hashchange", route);
    $("token").focus();
  });
})();
