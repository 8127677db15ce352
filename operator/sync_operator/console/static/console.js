// The console's browser side: plain ES modules, no build step and no CDN. Everything
// it shows comes from the console API with the user's own session; controls the user
// may not use are hidden (the server refuses them anyway).

const $ = (sel) => document.querySelector(sel);
const api = (path, options = {}) => fetch(`/api/v1${path}`, {
  credentials: "same-origin", headers: {"Content-Type": "application/json"}, ...options});

const state = {namespace: "", jobs: new Map(), access: {}, selected: new Set(), stream: null,
               historyPage: 0, detail: null, detailVersion: null, detailFetched: 0,
               logs: null, logsPhase: null};

const FINISHED = ["Succeeded", "Failed", "Cancelled"];

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

// When the same jobs are shown in the same order, only the rows that changed are
// swapped in place: putting a thousand rows back on every update cost the browser
// 0.3-0.5 s of layout per update (benchmarks/console.py), against ~50 ms for this.
function render() {
  const body = $("#jobs tbody");
  const jobs = [...state.jobs.values()].filter(visible)
    .sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0));
  const access = JSON.stringify(state.access), shown = [];
  for (const job of jobs) {
    const name = job.metadata.name;
    const key = `${job.metadata.resourceVersion}|${state.selected.has(name)}|${access}`;
    const known = rows.get(name);
    if (known && known.key === key) { shown.push(known.row); continue; }
    const row = buildRow(job);
    rows.set(name, {key, row});
    shown.push(row);
  }
  for (const name of rows.keys()) if (!state.jobs.has(name)) rows.delete(name);
  const current = body.children;
  let sameOrder = current.length === shown.length;
  for (let i = 0; sameOrder && i < shown.length; i++)
    sameOrder = current[i].dataset.name === shown[i].dataset.name;
  if (sameOrder) {
    for (let i = 0; i < shown.length; i++)
      if (current[i] !== shown[i]) current[i].replaceWith(shown[i]);
  } else {
    body.replaceChildren(...shown);
  }
  if (state.detail) renderDetail();
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
    const link = document.createElement("a");
    link.href = `#job/${encodeURIComponent(name)}`;
    link.textContent = name;
    link.addEventListener("click", (e) => { e.preventDefault(); openDetail(name); });
    const nameCell = row.insertCell();
    nameCell.className = "name";
    nameCell.append(link);
    cell(row, job.spec.jobType);
    cell(row, phase).className = "phase";
    const progress = row.insertCell();
    progress.className = "progress";
    showProgress(progress, p);
    cell(row, eta(p.etaSeconds));
    const prio = row.insertCell();
    if (state.access.priority && !FINISHED.includes(phase)) {
      // A button until clicked, then the selector: ten options a row made a thousand
      // rows ten thousand elements to lay out on every paint.
      const current = job.spec.priority ?? 5;
      const pick = button(`${current} ▾`, () => {
        const select = prioritySelect(current);
        select.addEventListener("change", () => act(name, "priority", select.value));
        pick.replaceWith(select);
        select.focus();
      });
      pick.dataset.action = "priority";
      pick.className = "prio";
      prio.append(pick);
    } else {
      prio.textContent = job.spec.priority ?? 5;
    }
    row.insertCell().append(...controls(job));
    return row;
  }
}

// A bar, the percent and done/total; the cell keeps done/total in data attributes.
function showProgress(el, p) {
  const bar = document.createElement("span");
  bar.className = "bar";
  const fill = document.createElement("span");
  const percent = p.percent ?? (p.total ? Math.floor(100 * (p.done || 0) / p.total) : 0);
  fill.style.width = `${percent}%`;
  bar.append(fill);
  el.dataset.done = p.done ?? "";
  el.dataset.total = p.total ?? "";
  el.replaceChildren(bar, ` ${percent}%` + (p.total ? ` ${p.done || 0}/${p.total}` : ""));
}

// The buttons this user may use on this job now (the table's and the job view's).
function controls(job) {
  const name = job.metadata.name, phase = (job.status || {}).phase || "Pending";
  const finished = FINISHED.includes(phase), out = [];
  if (!finished && state.access.pause && !job.spec.paused)
    out.push(button("pause", () => act(name, "pause")));
  if (!finished && state.access.resume && job.spec.paused)
    out.push(button("resume", () => act(name, "resume")));
  if (!finished && state.access.cancel && !job.spec.cancel)
    out.push(button("cancel", () => confirm(`Cancel ${name}? This cannot be undone.`)
      && act(name, "cancel")));
  if (state.access.delete)
    out.push(button("delete", () => confirm(`Delete ${name}?`) && act(name, "delete")));
  return out;
}

// -- the job view: detail, conditions, Events, audit trail, logs ------------------------

function openDetail(name) {
  state.detail = name;
  state.detailVersion = null;
  state.detailFetched = 0;
  $("#detail").hidden = false;
  $("#d-logs").textContent = "";
  state.logsPhase = null;
  if (state.logs) state.logs.abort();
  state.logs = null;
  renderDetail();
}

function closeDetail() {
  if (state.logs) state.logs.abort();
  state.detail = null;
  $("#detail").hidden = true;
}

function fact(list, label, value) {
  if (value == null || value === "") return;
  const dt = document.createElement("dt"), dd = document.createElement("dd");
  dt.textContent = label;
  dd.textContent = value;
  list.append(dt, dd);
}

function renderDetail() {
  const job = state.detail && state.jobs.get(state.detail);
  if (!job) { if (state.detail) $("#d-phase").textContent = "deleted"; return; }
  const st = job.status || {}, spec = job.spec, p = st.progress || {};
  $("#d-name").textContent = job.metadata.name;
  $("#d-phase").textContent = st.phase || "Pending";
  $("#detail").dataset.phase = st.phase || "Pending";
  $("#d-controls").replaceChildren(...controls(job));
  showProgress($("#d-progress"), p);
  const facts = $("#d-facts");
  facts.replaceChildren();
  fact(facts, "type", spec.jobType);
  fact(facts, "priority", spec.priority ?? 5);
  fact(facts, "params", JSON.stringify(spec.params || {}));
  fact(facts, "ETA", eta(p.etaSeconds));
  fact(facts, "progress message", p.message);
  const cp = st.checkpoint;
  fact(facts, "checkpoint", cp && cp.done != null ? `${cp.done} done, saved ${when(cp.savedAt)}` : "none");
  fact(facts, "attempts", st.attempts ?? 0);
  fact(facts, "runner Job", st.jobRef);
  fact(facts, "created", when(job.metadata.creationTimestamp));
  fact(facts, "started", when(st.startedAt));
  fact(facts, "completed", when(st.completedAt));
  fact(facts, "error", st.error);
  fill("#d-conditions", (st.conditions || []).map((c) => [c.type, c.status, c.reason, c.message,
    when(c.lastTransitionTime)]));
  if (state.logs === null && (st.phase || "Pending") !== state.logsPhase) loadLogs();
  // Events and the audit trail change with the job: fetch again when it changed, at
  // most every two seconds.
  const version = job.metadata.resourceVersion;
  if (version !== state.detailVersion && Date.now() - state.detailFetched > 2000) {
    state.detailVersion = version;
    state.detailFetched = Date.now();
    loadJobStory(job);
  }
}

async function loadJobStory(job) {
  const name = encodeURIComponent(job.metadata.name);
  const [events, audit] = await Promise.all([
    api(`/namespaces/${ns()}/syncjobs/${name}/events`),
    api(`/namespaces/${ns()}/audit?uid=${encodeURIComponent(job.metadata.uid)}&limit=100`)]);
  if (events.ok) {
    fill("#d-events", (await events.json()).map((e) => [e.type, e.reason,
      when(e.last_seen) + (e.count > 1 ? ` (×${e.count})` : ""), e.object, e.message]));
    $("#d-events-note").textContent = "";
  } else {
    fill("#d-events", []);
    $("#d-events-note").textContent = (await events.json()).detail;
  }
  fill("#d-audit", audit.ok ? (await audit.json()).map((r) => [when(r.at), r.action, r.user,
    r.phase]) : []);
}

// The last 200 lines; until the job has finished, followed as the runner prints (a
// fetch stream, aborted when the view closes or another job opens). A read that ended
// (no pod yet, or the pod went) is made again when the job's phase moves on.
async function loadLogs() {
  if (state.logs) state.logs.abort();
  state.logs = null;
  if (!state.detail || !state.access.logs) return;
  const job = state.jobs.get(state.detail), pre = $("#d-logs");
  const phase = job ? (job.status || {}).phase || "Pending" : "";
  const follow = !FINISHED.includes(phase);
  const control = new AbortController();
  state.logs = control;
  state.logsPhase = phase;
  try {
    const resp = await fetch(`/api/v1/namespaces/${ns()}/syncjobs/${encodeURIComponent(state.detail)}`
      + `/logs?tailLines=200${follow ? "&follow=true" : ""}`,
      {credentials: "same-origin", signal: control.signal});
    pre.classList.toggle("error", !resp.ok);
    if (!resp.ok) { pre.textContent = (await resp.json()).detail; return; }
    pre.textContent = "";
    const reader = resp.body.getReader(), decoder = new TextDecoder();
    for (;;) {
      const {done, value} = await reader.read();
      if (done) break;
      pre.textContent += decoder.decode(value, {stream: true});
      pre.scrollTop = pre.scrollHeight;
    }
  } catch (err) {
    if (err.name !== "AbortError") throw err;
  } finally {
    if (state.logs === control) state.logs = null;
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
  await Promise.all([loadThroughput(), loadTimeline()]);
}

// -- the schedule manager ---------------------------------------------------------------

function input(value, attrs = {}) {
  const el = document.createElement("input");
  Object.assign(el, attrs);
  if (el.type === "checkbox") el.checked = Boolean(value); else el.value = value ?? "";
  el.disabled = !state.access.schedules;
  return el;
}

function scheduleMessage(text, error = false) {
  $("#s-message").textContent = text;
  $("#s-message").className = error ? "error" : "";
}

// `message`: what to say once the table is drawn again (a save's outcome).
async function loadSchedules(message = "") {
  const resp = await api(`/namespaces/${ns()}/syncschedules`);
  const body = await resp.json();
  scheduleMessage(resp.ok ? message : body.detail, !resp.ok);
  const tbody = $("#schedules tbody");
  tbody.replaceChildren();
  for (const sched of resp.ok ? body : []) {
    const spec = sched.spec, st = sched.status || {}, name = sched.metadata.name;
    const row = tbody.insertRow();
    row.dataset.name = name;
    cell(row, name);
    cell(row, spec.jobType);
    const fields = {
      schedule: input(spec.schedule, {size: 14}),
      timeZone: input(spec.timeZone || "UTC", {size: 14}),
      priority: input(spec.priority ?? 5, {type: "number", min: 1, max: 10}),
      maxConcurrency: input(spec.maxConcurrency ?? 1, {type: "number", min: 1, max: 100}),
      suspend: input(spec.suspend, {type: "checkbox"}),
    };
    for (const [key, el] of Object.entries(fields)) {
      el.dataset.field = key;
      row.insertCell().append(el);
    }
    cell(row, when(st.lastScheduleTime));
    cell(row, spec.suspend ? "suspended" : when(st.nextScheduleTime));
    cell(row, st.activeCount ?? (st.active || []).length);
    const save = button("save", () => saveSchedule(name, fields));
    save.hidden = !state.access.schedules;
    const run = button("run now", () => triggerSchedule(name));
    run.hidden = !state.access.create;
    row.insertCell().append(save, run);
  }
}

async function saveSchedule(name, fields) {
  const change = {schedule: fields.schedule.value.trim(), timeZone: fields.timeZone.value.trim(),
                  priority: Number(fields.priority.value),
                  maxConcurrency: Number(fields.maxConcurrency.value),
                  suspend: fields.suspend.checked};
  const resp = await api(`/namespaces/${ns()}/syncschedules/${encodeURIComponent(name)}`,
                         {method: "PATCH", body: JSON.stringify(change)});
  const body = await resp.json();
  const detail = Array.isArray(body.detail)
    ? body.detail.map((e) => `${e.loc.slice(1).join(".")}: ${e.msg}`).join("; ") : body.detail;
  if (resp.ok) await loadSchedules(`${name}: saved`);
  else scheduleMessage(`${name}: ${detail}`, true);
}

async function triggerSchedule(name) {
  const resp = await api(`/namespaces/${ns()}/syncschedules/${encodeURIComponent(name)}/trigger`,
                         {method: "POST"});
  const body = await resp.json();
  scheduleMessage(resp.ok ? `${name}: started ${body.metadata.name}` : `${name}: ${body.detail}`,
                  !resp.ok);
}

// -- new jobs -----------------------------------------------------------------------------

async function createJob() {
  let params = {};
  const text = $("#n-params").value.trim();
  if (text) {
    try { params = JSON.parse(text); } catch (e) { say(`params: not JSON (${e.message})`, true); return; }
  }
  const body = {jobType: $("#n-type").value, priority: Number($("#n-priority").value), params,
                paused: $("#n-paused").checked};
  if ($("#n-name").value.trim()) body.name = $("#n-name").value.trim();
  const resp = await api(`/namespaces/${ns()}/syncjobs`, {method: "POST", body: JSON.stringify(body)});
  const answer = await resp.json();
  if (!resp.ok) {
    say(Array.isArray(answer.detail)
      ? answer.detail.map((e) => `${e.loc.slice(1).join(".")}: ${e.msg}`).join("; ") : answer.detail, true);
    return;
  }
  say(`${answer.metadata.name}: created`);
  $("#n-name").value = "";
}

// -- charts (plain SVG) -----------------------------------------------------------------

const SVG = "http://www.w3.org/2000/svg";
const TYPE_COLORS = {quran: "#2563eb", prayer: "#16a34a", hadith: "#9333ea", audio: "#ea580c",
                     finance: "#0891b2"};
const PHASE_COLORS = {Succeeded: "#16a34a", Failed: "#dc2626", Cancelled: "#6b7280",
                      Running: "#2563eb", Paused: "#d97706", Queued: "#94a3b8"};

function svg(tag, attrs = {}, title = "") {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (title) { const t = document.createElementNS(SVG, "title"); t.textContent = title; el.append(t); }
  return el;
}

const BUCKET_MS = {minute: 60e3, hour: 3600e3, day: 86400e3};
// What the console's THROUGHPUT_WINDOW shows when no `since` is given.
const WINDOW_MS = {minute: 2 * 3600e3, hour: 2 * 86400e3, day: 30 * 86400e3};

async function loadThroughput() {
  const bucket = $("#t-bucket").value;
  const resp = await api(`/namespaces/${ns()}/analytics/throughput?bucket=${bucket}`);
  const points = resp.ok ? await resp.json() : [];
  const step = BUCKET_MS[bucket], totals = new Map(), types = new Set();
  for (const p of points) {
    const t = Date.parse(p.bucket);
    types.add(p.job_type);
    if (!totals.has(t)) totals.set(t, {});
    totals.get(t)[p.job_type] = p.succeeded + p.failed + p.cancelled;
  }
  const chart = $("#throughput");
  if (!points.length) { chart.textContent = "no finished runs in this window"; return; }
  // The whole window, empty buckets included (UTC-aligned, as date_trunc makes them).
  const last = Math.floor(Date.now() / step) * step;
  const first = Math.min(Math.floor((Date.now() - WINDOW_MS[bucket]) / step) * step,
                         ...totals.keys());
  const buckets = [];
  for (let t = first; t <= last; t += step) buckets.push(t);
  const max = Math.max(...buckets.map((t) => Object.values(totals.get(t) || {}).reduce((a, b) => a + b, 0)));
  const width = 720, height = 180, left = 40;
  const barW = Math.max(1, (width - left) / buckets.length - 1);
  const out = svg("svg", {viewBox: `0 0 ${width} ${height + 40}`, width, height: height + 40,
                          "data-buckets": buckets.length});
  out.append(svg("text", {x: 0, y: 12, class: "axis"}), svg("line", {x1: left, y1: height, x2: width, y2: height, class: "axis"}));
  out.firstChild.textContent = String(max);
  buckets.forEach((t, i) => {
    let y = height;
    for (const type of [...types].sort()) {
      const n = (totals.get(t) || {})[type] || 0;
      if (!n) continue;
      const h = (height - 10) * n / max;
      y -= h;
      out.append(svg("rect", {x: left + i * (barW + 1), y, width: barW, height: h,
                              fill: TYPE_COLORS[type] || "#64748b", "data-type": type, "data-count": n},
                     `${new Date(t).toLocaleString()} · ${type}: ${n}`));
    }
  });
  const label = (t) => new Date(t).toLocaleString([], bucket === "day" ? {month: "short", day: "numeric"} : {hour: "2-digit", minute: "2-digit"});
  out.append(svg("text", {x: left, y: height + 14, class: "axis"}), svg("text", {x: width, y: height + 14, class: "axis", "text-anchor": "end"}));
  out.children[out.children.length - 2].textContent = label(first);
  out.lastChild.textContent = label(last);
  let lx = left;
  for (const type of [...types].sort()) {
    out.append(svg("rect", {x: lx, y: height + 24, width: 10, height: 10, fill: TYPE_COLORS[type] || "#64748b"}));
    const text = svg("text", {x: lx + 14, y: height + 33, class: "axis"});
    text.textContent = type;
    out.append(text);
    lx += 90;
  }
  chart.replaceChildren(out);
}

async function loadTimeline() {
  const resp = await api(`/namespaces/${ns()}/analytics/timeline?limit=40`);
  const runs = resp.ok ? (await resp.json()).reverse() : [];
  const chart = $("#timeline");
  if (!runs.length) { chart.textContent = "no runs yet"; return; }
  const now = Date.now(), at = (t) => (t ? Date.parse(t) : now);
  const start = Math.min(...runs.map((r) => at(r.created_at)));
  const end = Math.max(...runs.map((r) => at(r.completed_at)));
  const width = 720, left = 190, rowH = 14, span = Math.max(1, end - start);
  const x = (t) => left + (width - left - 10) * (t - start) / span;
  const out = svg("svg", {viewBox: `0 0 ${width} ${runs.length * rowH + 20}`, width,
                          height: runs.length * rowH + 20});
  runs.forEach((r, i) => {
    const y = i * rowH;
    const name = svg("text", {x: 0, y: y + 10, class: "axis"});
    name.textContent = r.name.length > 28 ? `${r.name.slice(0, 27)}…` : r.name;
    out.append(name);
    const began = r.started_at ? at(r.started_at) : at(r.completed_at);
    out.append(svg("rect", {x: x(at(r.created_at)), y: y + 3, height: rowH - 6, class: "waiting",
                            width: Math.max(1, x(began) - x(at(r.created_at)))},
                   `${r.name}: waited ${((began - at(r.created_at)) / 1000).toFixed(1)} s`));
    if (r.started_at)
      out.append(svg("rect", {x: x(began), y: y + 1, height: rowH - 2, "data-phase": r.phase,
                              width: Math.max(2, x(at(r.completed_at)) - x(began)),
                              fill: PHASE_COLORS[r.phase] || "#64748b"},
                     `${r.name} (${r.job_type}): ${r.phase}, ran ${((at(r.completed_at) - began) / 1000).toFixed(1)} s`));
  });
  const span_s = svg("text", {x: width, y: runs.length * rowH + 14, class: "axis", "text-anchor": "end"});
  span_s.textContent = `${new Date(start).toLocaleTimeString()} – ${new Date(end).toLocaleTimeString()}`;
  out.append(span_s);
  chart.replaceChildren(out);
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
const newPriority = $("#n-priority");
for (let i = 1; i <= 10; i++) newPriority.add(new Option(String(i), String(i), false, i === 5));
$("#new-job-form").addEventListener("submit", (e) => { e.preventDefault(); createJob(); });
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
    ({history: loadHistory, audit: loadAudit, analytics: loadAnalytics,
      schedules: () => loadSchedules()}[tab.dataset.tab] || (() => {}))();
  });
}
$("#h-go").addEventListener("click", () => { state.historyPage = 0; loadHistory(); });
$("#h-prev").addEventListener("click", () => { state.historyPage = Math.max(0, state.historyPage - 1); loadHistory(); });
$("#h-next").addEventListener("click", () => { state.historyPage += 1; loadHistory(); });
$("#a-go").addEventListener("click", loadAudit);
$("#d-close").addEventListener("click", closeDetail);
$("#d-logs-refresh").addEventListener("click", loadLogs);
$("#t-bucket").addEventListener("change", loadThroughput);

start();
