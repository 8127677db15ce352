// The console's browser side: plain ES modules, no build step and no CDN. Everything
// it shows comes from the console API with the user's own session; controls the user
// may not use are hidden (the server refuses them anyway).

const $ = (sel) => document.querySelector(sel);
const api = (path, options = {}) => fetch(`/api/v1${path}`, {
  credentials: "same-origin", headers: {"Content-Type": "application/json"}, ...options});

const state = {namespace: "", jobs: new Map(), access: {}, selected: new Set(), stream: null,
               historyPage: 0};

function ns() { return encodeURIComponent(state.namespace); }

function eta(seconds) {
  if (seconds == null) return "";
  if (seconds < 60) return `${seconds}s`;
  const m = Math.floor(seconds / 60), s = seconds % 60;
  return m < 60 ? `${m}m${String(s).padStart(2, "0")}s` : `${Math.floor(m / 60)}h${m % 60}m`;
}

function say(text, error = false) {
  const el = $("#message");
  el.textContent = text;
  el.className = error ? "error" : "";
}

// -- the job table ------------------------------------------------------------------

function visible(job) {
  const q = $("#search").value.trim(), type = $("#type-filter").value;
  const phase = $("#phase-filter").value, st = job.status || {};
  return (!q || job.metadata.name.includes(q)) && (!type || job.spec.jobType === type)
    && (!phase || (st.phase || "Pending") === phase);
}

function cell(row, text) { const td = row.insertCell(); td.textContent = text; return td; }

function button(label, onClick) {
  const b = document.createElement("button");
  b.textContent = label;
  b.dataset.action = label;
  b.addEventListener("click", onClick);
  return b;
}

// Rows are rebuilt only when their job changed: an unchanged row keeps its elements
// (a button under the pointer stays the same button while others update).
const rows = new Map();

function render() {
  const body = $("#jobs tbody");
  const jobs = [...state.jobs.values()].filter(visible)
    .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  const shown = [];
  for (const job of jobs) {
    const name = job.metadata.name;
    const key = `${job.metadata.resourceVersion}|${state.selected.has(name)}|${JSON.stringify(state.access)}`;
    const known = rows.get(name);
    if (known && known.key === key) { shown.push(known.row); continue; }
    const row = buildRow(job);
    rows.set(name, {key, row});
    shown.push(row);
  }
  for (const name of rows.keys()) if (!state.jobs.has(name)) rows.delete(name);
  body.replaceChildren(...shown);
}

function buildRow(job) {
  {
    const name = job.metadata.name, st = job.status || {}, p = st.progress || {};
    const phase = st.phase || "Pending";
    const row = document.createElement("tr");
    row.dataset.name = name;
    row.dataset.phase = phase;
    const pick = document.createElement("input");
    pick.type = "checkbox";
    pick.checked = state.selected.has(name);
    pick.addEventListener("change", () => {
      pick.checked ? state.selected.add(name) : state.selected.delete(name);
      showBulk();
    });
    row.insertCell().append(pick);
    cell(row, name).className = "name";
    cell(row, job.spec.jobType);
    cell(row, phase).className = "phase";
    const bar = document.createElement("span");
    bar.className = "bar";
    const fill = document.createElement("span");
    const percent = p.percent ?? (p.total ? Math.floor(100 * (p.done || 0) / p.total) : 0);
    fill.style.width = `${percent}%`;
    bar.append(fill);
    const progress = row.insertCell();
    progress.className = "progress";
    progress.dataset.done = p.done ?? "";
    progress.dataset.total = p.total ?? "";
    progress.append(bar, ` ${percent}%` + (p.total ? ` ${p.done || 0}/${p.total}` : ""));
    cell(row, eta(p.etaSeconds));
    const prio = row.insertCell();
    if (state.access.priority && !["Succeeded", "Failed", "Cancelled"].includes(phase)) {
      const select = prioritySelect(job.spec.priority ?? 5);
      select.addEventListener("change", () => act(name, "priority", select.value));
      prio.append(select);
    } else {
      prio.textContent = job.spec.priority ?? 5;
    }
    const actions = row.insertCell();
    const finished = ["Succeeded", "Failed", "Cancelled"].includes(phase);
    if (!finished && state.access.pause && !job.spec.paused)
      actions.append(button("pause", () => act(name, "pause")));
    if (!finished && state.access.resume && job.spec.paused)
      actions.append(button("resume", () => act(name, "resume")));
    if (!finished && state.access.cancel && !job.spec.cancel)
      actions.append(button("cancel", () => confirm(`Cancel ${name}? This cannot be undone.`)
        && act(name, "cancel")));
    if (state.access.delete)
      actions.append(button("delete", () => confirm(`Delete ${name}?`) && act(name, "delete")));
    return row;
  }
}

function prioritySelect(current) {
  const select = document.createElement("select");
  for (let i = 1; i <= 10; i++) select.add(new Option(String(i), String(i), false, i === current));
  return select;
}

async function act(name, action, priority) {
  const query = priority ? `?priority=${priority}` : "";
  const resp = await api(`/namespaces/${ns()}/syncjobs/${encodeURIComponent(name)}/${action}${query}`,
                         {method: "POST"});
  const body = await resp.json();
  say(resp.ok ? `${name}: ${action} requested` : `${name}: ${body.detail}`, !resp.ok);
}

function showBulk() {
  const count = state.selected.size;
  $("#bulk").hidden = count === 0;
  $("#bulk-count").textContent = `${count} selected`;
}

async function bulk(action, priority) {
  const names = [...state.selected];
  if (["cancel", "delete"].includes(action)
      && !confirm(`${action} ${names.length} jobs? This cannot be undone.`)) return;
  const body = {action, names};
  if (priority) body.priority = Number(priority);
  const resp = await api(`/namespaces/${ns()}/bulk`, {method: "POST", body: JSON.stringify(body)});
  const results = await resp.json();
  if (!resp.ok) { say(JSON.stringify(results.detail), true); return; }
  const failed = results.filter((r) => !r.ok);
  say(`${action}: ${results.length - failed.length} done` + (failed.length
    ? `, ${failed.length} refused (${failed.map((r) => `${r.name}: ${r.message}`).join("; ")})` : ""),
    failed.length > 0);
  state.selected.clear();
  showBulk();
  render();
}

// -- live ------------------------------------------------------------------------------

function connect() {
  if (state.stream) state.stream.close();
  const stream = new EventSource(`/api/v1/namespaces/${ns()}/watch/syncjobs`);
  state.stream = stream;
  stream.addEventListener("open", () => { $("#live").textContent = "live"; $("#live").className = "badge on"; });
  stream.addEventListener("error", () => { $("#live").textContent = "reconnecting"; $("#live").className = "badge"; });
  stream.addEventListener("snapshot", (e) => {
    state.jobs = new Map(JSON.parse(e.data).jobs.map((j) => [j.metadata.name, j]));
    render();
  });
  stream.addEventListener("changes", (e) => {
    for (const change of JSON.parse(e.data).changes) {
      if (change.type === "DELETED") state.jobs.delete(change.job.metadata.name);
      else state.jobs.set(change.job.metadata.name, change.job);
    }
    render();
  });
  stream.addEventListener("expired", () => { stream.close(); showLogin("Your session has expired."); });
}

// -- history, audit, analytics ---------------------------------------------------------

function fill(table, rows) {
  const body = $(`${table} tbody`);
  body.replaceChildren();
  for (const values of rows) {
    const row = body.insertRow();
    for (const v of values) cell(row, v ?? "");
  }
}

const when = (t) => (t ? new Date(t).toLocaleString() : "");

async function loadHistory() {
  const q = new URLSearchParams({limit: "50", offset: String(50 * state.historyPage)});
  for (const [key, id] of [["search", "#h-search"], ["job_type", "#h-type"], ["phase", "#h-phase"]])
    if ($(id).value) q.set(key, $(id).value);
  const resp = await api(`/namespaces/${ns()}/history?${q}`);
  const rows = resp.ok ? await resp.json() : [];
  $("#h-page").textContent = String(state.historyPage + 1);
  fill("#history", rows.map((r) => [r.name, r.job_type, r.phase, `${Math.round(r.progress)}%`,
    when(r.created_at), when(r.completed_at), r.attempts, r.error]));
}

async function loadAudit() {
  const q = new URLSearchParams({limit: "100"});
  for (const [key, id] of [["search", "#a-search"], ["user", "#a-user"], ["action", "#a-action"]])
    if ($(id).value) q.set(key, $(id).value);
  const resp = await api(`/namespaces/${ns()}/audit?${q}`);
  const rows = resp.ok ? await resp.json() : [];
  fill("#audit", rows.map((r) => [when(r.at), r.name, r.action, r.user, r.phase]));
}

async function loadAnalytics() {
  const resp = await api(`/namespaces/${ns()}/analytics`);
  const rows = resp.ok ? await resp.json() : [];
  const secs = (s) => (s == null ? "" : `${s.toFixed(1)} s`);
  fill("#analytics", rows.map((r) => [r.job_type, r.finished,
    r.success_rate == null ? "" : `${Math.round(100 * r.success_rate)}%`,
    secs(r.duration_p50_seconds), secs(r.duration_p95_seconds)]));
}

// -- session and start-up --------------------------------------------------------------

function showLogin(error = "") {
  $("#app").hidden = true;
  $("#logout").hidden = true;
  $("#login").hidden = false;
  $("#login-error").textContent = error;
}

async function openNamespace() {
  state.namespace = $("#namespace").value.trim() || "default";
  localStorage.setItem("sync-console-namespace", state.namespace);
  const resp = await api(`/namespaces/${ns()}/access`);
  if (!resp.ok) {
    state.jobs.clear();
    render();
    say((await resp.json()).detail, true);
    return;
  }
  state.access = await resp.json();
  for (const el of document.querySelectorAll("[data-needs]"))
    el.hidden = !state.access[el.dataset.needs];
  say("");
  connect();
}

async function start() {
  const params = new URLSearchParams(location.search);
  const handover = params.get("handover");
  if (handover) {  // from `kubectl sync console`: trade the code, then drop it from the URL
    params.delete("handover");
    history.replaceState(null, "", `${location.pathname}?${params}`);
    const resp = await api("/session/handover", {method: "POST", body: JSON.stringify({code: handover})});
    if (!resp.ok) { showLogin((await resp.json()).detail); return; }
  }
  $("#namespace").value = params.get("namespace")
    || localStorage.getItem("sync-console-namespace") || "default";
  const who = await api("/whoami");
  if (!who.ok) { showLogin(); return; }
  const me = await who.json();
  $("#who").textContent = me.user;
  $("#login").hidden = true;
  $("#app").hidden = false;
  $("#logout").hidden = false;
  await openNamespace();
}

$("#login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const resp = await api("/session", {method: "POST",
                                      body: JSON.stringify({token: $("#token").value})});
  if (!resp.ok) { $("#login-error").textContent = (await resp.json()).detail; return; }
  $("#token").value = "";
  await start();
});
$("#logout").addEventListener("click", async () => {
  await api("/session", {method: "DELETE"});
  if (state.stream) state.stream.close();
  showLogin();
});
$("#namespace").addEventListener("change", openNamespace);
for (const id of ["#search", "#type-filter", "#phase-filter"])
  $(id).addEventListener("input", render);
$("#select-all").addEventListener("change", (e) => {
  state.selected = e.target.checked
    ? new Set([...state.jobs.values()].filter(visible).map((j) => j.metadata.name)) : new Set();
  showBulk();
  render();
});
for (const b of document.querySelectorAll("[data-bulk]"))
  b.addEventListener("click", () => bulk(b.dataset.bulk));
const bulkPriority = $("#bulk-priority");
for (let i = 1; i <= 10; i++) bulkPriority.add(new Option(String(i), String(i)));
bulkPriority.addEventListener("change", () => {
  if (bulkPriority.value) bulk("priority", bulkPriority.value);
  bulkPriority.value = "";
});
for (const tab of document.querySelectorAll("nav button")) {
  tab.addEventListener("click", () => {
    for (const t of document.querySelectorAll("nav button")) t.classList.toggle("active", t === tab);
    for (const s of document.querySelectorAll(".tab")) s.hidden = s.id !== `tab-${tab.dataset.tab}`;
    ({history: loadHistory, audit: loadAudit, analytics: loadAnalytics}[tab.dataset.tab] || (() => {}))();
  });
}
$("#h-go").addEventListener("click", () => { state.historyPage = 0; loadHistory(); });
$("#h-prev").addEventListener("click", () => { state.historyPage = Math.max(0, state.historyPage - 1); loadHistory(); });
$("#h-next").addEventListener("click", () => { state.historyPage += 1; loadHistory(); });
$("#a-go").addEventListener("click", loadAudit);

start();
