// The p2p-testnet dashboard page: one websocket (/ws) brings a snapshot, then updates; this
// script keeps the latest state and redraws from it. No libraries, no build step.
//
// The block tree is one SVG redrawn whole for the current window (a few hundred blocks at most):
// height grows upward, one row per height; lane 0 is the canonical chain and side branches sit
// in lanes to its right. Node cards are keyed by node name and updated in place; the timeline
// keeps a bounded list of rows, newest first.
//
// A replay (`testnet replay REPORT_DIR`) serves the same page: its frames carry `replay` (the
// run's first and last timestamp and the moment shown) and `controls: false`. The page then shows
// a scrubber; moving it or playing asks the server for a time (/api/replay?t=...), and the
// picture of that moment arrives over the websocket like a live one.
"use strict";

const PLAY_TICK_MS = 250;
const ROW_H = 24, BLOCK_W = 64, BLOCK_H = 16, PILL_H = 14, LEFT = 68, PAD_TOP = 14;
const MAX_TIMELINE_ROWS = 300, MAX_TIMELINE_KEPT = 1500;
const ROUTINE = new Set(["block_accepted", "head_changed", "attestation", "vote"]);
const PALETTE = ["#2f9e44", "#e8590c", "#1c7ed6", "#ae3ec9", "#f08c00", "#0c8599", "#d6336c",
                 "#5c940d"];
// The node-card buttons come from the server's action table (snapshot.actions.node); this is only
// what a page shows before its first snapshot.
let NODE_ACTIONS = ["kill", "start", "restart", "pause", "resume"];

const state = {
  cluster: null, consensus: null, nodes: [], connectivity: {}, partition: null, faults: null,
  tree: null, window: {top: null, size: 120, follow: true}, timeline: [],
};
const stats = {frames: 0, renders: 0, lastRenderMs: 0, maxRenderMs: 0, blocksDrawn: 0,
               missed: 0, resyncs: 0, bytes: 0};
window.dashboardStats = stats;      // read by the browser test and scripts/bench_dashboard.py
window.dashboardState = state;

const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => (
  {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
// PoW hashes start with zeros (the work); what tells blocks apart follows them.
const short = (h, n = 8) => (h ? String(h).replace(/^0+(?=.)/, "").slice(0, n) : "–");
const laneColour = (lane) => PALETTE[(lane || 0) % PALETTE.length];
const clock = (ts) => {
  const d = new Date(ts * 1000);
  return d.toTimeString().slice(0, 8) + "." + String(d.getMilliseconds()).padStart(3, "0");
};

// ---- websocket ------------------------------------------------------------------------------
let ws = null, backoff = 250;
let userWindow = false;             // the user scrolled or resized: keep that across reconnects

function connect() {
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  ws = new WebSocket(scheme + location.host + "/ws");
  ws.onopen = () => {
    backoff = 250;
    setWsState(replay.on ? "replay" : "live", "on");
    if (userWindow) sendWindow();   // the server starts every client at the tip
  };
  ws.onmessage = (msg) => {
    stats.frames += 1;
    stats.bytes += msg.data.length;
    onFrame(JSON.parse(msg.data));
  };
  ws.onclose = () => {
    setWsState("reconnecting", "off");
    setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, 4000);
  };
}

function setWsState(text, cls) {
  const el = $("ws-state");
  el.textContent = text;
  el.className = "badge " + cls;
}

function sendWindow() {
  if (ws && ws.readyState === WebSocket.OPEN) {
    ws.send(JSON.stringify({type: "window", top: state.window.follow ? null : state.window.top,
                            size: state.window.size}));
  }
}

function onFrame(frame) {
  if (frame.replay) adoptReplay(frame.replay);
  if (frame.type === "snapshot") {
    if (frame.actions && Array.isArray(frame.actions.node)) NODE_ACTIONS = frame.actions.node;
    document.body.classList.toggle("no-controls", frame.controls === false);
    Object.assign(state, {cluster: frame.cluster, consensus: frame.consensus, nodes: frame.nodes,
                          connectivity: frame.connectivity, partition: frame.partition,
                          faults: frame.faults, tree: frame.tree});
    state.timeline = frame.timeline.slice(-MAX_TIMELINE_KEPT);
    if (!userWindow) adoptWindow(frame.window);
    stats.resyncs += 1;
    renderTimeline(true);
  } else if (frame.type === "update") {
    for (const key of ["nodes", "connectivity", "partition", "faults", "tree"]) {
      if (frame[key] !== undefined) state[key] = frame[key];
    }
    if (frame.events) addEvents(frame.events);
  } else if (frame.type === "missed") {
    stats.missed += frame.count;
    const banner = $("missed-banner");
    banner.textContent = `missed ${frame.count} update(s) while this page was not reading; ` +
                         "redrawn from a fresh snapshot";
    banner.hidden = false;
    setTimeout(() => { banner.hidden = true; }, 8000);
    return;
  } else if (frame.type === "error") {
    showControl(frame.error, true);
    return;
  }
  scheduleRender();
}

let renderPending = false;
function scheduleRender() {
  if (renderPending) return;
  renderPending = true;
  requestAnimationFrame(() => {
    renderPending = false;
    render();
  });
}

function render() {
  if (!state.tree) return;
  const started = performance.now();
  renderHeader();
  renderTree();
  renderPartition();
  renderNodes();
  const ms = performance.now() - started;
  stats.renders += 1;
  stats.lastRenderMs = ms;
  stats.maxRenderMs = Math.max(stats.maxRenderMs, ms);
  $("footer").textContent = `render ${ms.toFixed(1)} ms (max ${stats.maxRenderMs.toFixed(1)}) · ` +
    `${stats.blocksDrawn} blocks drawn · ${stats.frames} frames, ` +
    `${(stats.bytes / 1024).toFixed(0)} KiB · missed ${stats.missed}`;
}

// ---- header ---------------------------------------------------------------------------------
function renderHeader() {
  const t = state.tree;
  $("cluster-name").textContent = state.cluster;
  document.title = `${state.cluster} · p2p-testnet`;
  $("consensus").textContent = String(state.consensus).toUpperCase();
  $("stat-height").textContent = t.max_height;
  $("stat-blocks").textContent = t.total_blocks;
  $("stat-stale").textContent = t.stale_blocks;
  $("stat-reorgs").textContent = t.reorgs;
  $("stat-heads").textContent = new Set(Object.values(t.heads)).size;
  const p = state.partition || {partitioned: false, groups: []};
  const badge = $("partition-badge");
  badge.textContent = p.partitioned ? `partitioned: ${p.groups.length} group(s)` : "connected";
  badge.className = "badge " + (p.partitioned ? "bad" : "on");
}

// ---- block tree -----------------------------------------------------------------------------
function checkpointsByRoot(t) {
  const out = {};
  for (const [kind, byNode] of [["justified", t.justified], ["finalized", t.finalized]]) {
    for (const [node, cp] of Object.entries(byNode || {})) {
      const entry = out[cp.root] || (out[cp.root] = {justified: [], finalized: []});
      entry[kind].push(`${node} (epoch ${cp.epoch})`);
    }
  }
  return out;
}

function blockTitle(b, t) {
  const lines = [`block ${b.hash}`, `height ${b.height}` + (b.slot != null ? `, slot ${b.slot}` : ""),
                 `state ${b.state} (lane ${b.lane})`];
  if (b.producer) lines.push(`producer ${short(b.producer, 16)}`);
  lines.push(`first seen ${clock(b.first_seen)}`);
  const seen = Object.entries(b.seen_by || {}).sort((a, c) => a[1] - c[1]);
  for (const [node, ts] of seen) {
    lines.push(`  ${node} +${Math.round((ts - b.first_seen) * 1000)} ms`);
  }
  const heads = Object.entries(t.heads).filter(([, h]) => h === b.hash).map(([n]) => n);
  if (heads.length) lines.push(`head of ${heads.join(", ")}`);
  return lines.join("\n");
}

function renderTree() {
  const t = state.tree;
  const svg = $("tree");
  const blocks = t.blocks;
  const byHash = new Map(blocks.map((b) => [b.hash, b]));
  const top = t.top, bottom = t.bottom;
  const withGenesis = bottom <= 1;
  const lowest = withGenesis ? 0 : bottom;
  // Heads drawn beside their block (or beside the genesis marker at height 0).
  const pillsAt = new Map();
  const offscreen = [];
  for (const [node, head] of Object.entries(t.heads).sort(byNodeName)) {
    if (byHash.has(head)) {
      (pillsAt.get(head) || pillsAt.set(head, []).get(head)).push(node);
    } else if (withGenesis && (t.head_heights[node] || 0) === 0) {
      (pillsAt.get("genesis") || pillsAt.set("genesis", []).get("genesis")).push(node);
    } else {
      offscreen.push(`${node} at ${t.head_heights[node] ?? "?"}`);
    }
  }
  $("offscreen-heads").textContent = offscreen.length ?
    `heads outside this window: ${offscreen.join(", ")}` : "";
  const pillLabel = (node, crowd) => (crowd > 4 ? node.replace(/^node/, "") : node);
  const pillWidth = (label) => 10 + label.length * 6.2;
  // Lane widths: a block plus the widest row of head pills in that lane.
  const laneList = [...new Set(blocks.map((b) => b.lane).concat([0]))].sort((a, c) => a - c);
  const need = new Map(laneList.map((l) => [l, 0]));
  for (const [hash, nodes] of pillsAt) {
    const lane = hash === "genesis" ? 0 : byHash.get(hash).lane;
    const w = nodes.reduce((s, n) => s + pillWidth(pillLabel(n, nodes.length)) + 3, 0);
    need.set(lane, Math.max(need.get(lane), w));
  }
  const laneX = new Map();
  let x = LEFT;
  for (const lane of laneList) {
    laneX.set(lane, x);
    x += BLOCK_W + 22 + need.get(lane);
  }
  const width = Math.max(x + 10, 320);
  const rows = top - lowest + 1;
  const height = PAD_TOP * 2 + rows * ROW_H;
  const yOf = (h) => PAD_TOP + (top - h) * ROW_H;
  const cx = (lane) => laneX.get(lane) + BLOCK_W / 2;
  const out = [];
  // Height labels and row guides.
  out.push('<g class="rows">');
  for (let h = top; h >= lowest; h--) {
    const y = yOf(h);
    if ((top - h) % 2 === 0) out.push(`<rect class="row-band" x="0" y="${y - 4}" width="${width}" height="${ROW_H}"/>`);
    out.push(`<text class="row-label" x="${LEFT - 22}" y="${y + BLOCK_H - 4}">${h}</text>`);
  }
  out.push("</g><g class=\"edges\">");
  for (const b of blocks) {
    const x1 = cx(b.lane), y1 = yOf(b.height) + BLOCK_H;
    const parent = byHash.get(b.parent);
    let x2, y2, cls = "edge " + b.state;
    if (parent) {
      x2 = cx(parent.lane);
      y2 = yOf(parent.height);
    } else if (b.height === 1 && withGenesis) {
      x2 = cx(0);
      y2 = yOf(0) + 2;
    } else {
      x2 = x1;
      y2 = y1 + ROW_H - BLOCK_H;
      cls += " cut";
    }
    if (x1 === x2) {
      out.push(`<line class="${cls}" x1="${x1}" y1="${y1}" x2="${x2}" y2="${y2}"/>`);
    } else {
      // A branch leaves its parent's side: curve from the child's foot to the parent's edge.
      const side = x2 < x1 ? x2 + BLOCK_W / 2 : x2 - BLOCK_W / 2;
      const ym = y2 + BLOCK_H / 2;
      out.push(`<path class="${cls}" d="M${x1} ${y1} C${x1} ${ym} ${x1} ${ym} ${side} ${ym}"/>`);
    }
  }
  out.push('</g><g class="blocks">');
  if (withGenesis) {
    out.push(`<g class="genesis" transform="translate(${cx(0)},${yOf(0) + BLOCK_H / 2})">` +
             `<title>genesis (height 0)</title><circle r="6"/></g>`);
  }
  const checkpoints = checkpointsByRoot(t);
  for (const b of blocks) {
    const cp = checkpoints[b.hash];
    const classes = ["block", b.state];
    if (cp && cp.justified.length) classes.push("justified");
    if (cp && cp.finalized.length) classes.push("finalized");
    const fill = b.state === "stale" ? "" : ` style="fill:${laneColour(b.lane)}"`;
    let title = blockTitle(b, t);
    if (cp) {
      if (cp.finalized.length) title += `\nfinalized by ${cp.finalized.join(", ")}`;
      if (cp.justified.length) title += `\njustified by ${cp.justified.join(", ")}`;
    }
    out.push(`<g class="${classes.join(" ")}" data-hash="${esc(b.hash)}" data-height="${b.height}" ` +
             `data-lane="${b.lane}" data-state="${b.state}" ` +
             `transform="translate(${laneX.get(b.lane)},${yOf(b.height)})">` +
             `<title>${esc(title)}</title>` +
             `<rect width="${BLOCK_W}" height="${BLOCK_H}" rx="3"${fill}/>` +
             `<text x="${BLOCK_W / 2}" y="${BLOCK_H - 4}">${esc(short(b.hash, 8))}</text>`);
    if (cp) {
      const kind = cp.finalized.length ? "finalized" : "justified";
      out.push(`<g class="cp-badge ${kind}" transform="translate(-12,${BLOCK_H / 2})">` +
               `<circle r="6"/><text y="3">${kind === "finalized" ? "F" : "J"}</text></g>`);
    }
    out.push("</g>");
  }
  out.push('</g><g class="heads">');
  for (const [hash, nodes] of pillsAt) {
    const b = byHash.get(hash);
    const lane = b ? b.lane : 0;
    const colour = b && b.state === "stale" ? "#868e96" : laneColour(lane);
    let px = (b ? laneX.get(lane) + BLOCK_W : cx(0) + 6) + 6;
    const py = (b ? yOf(b.height) : yOf(0)) + (BLOCK_H - PILL_H) / 2;
    for (const node of nodes) {
      const label = pillLabel(node, nodes.length);
      const w = pillWidth(label);
      out.push(`<g class="head-marker" data-node="${esc(node)}" data-head="${esc(hash)}" ` +
               `data-lane="${lane}" transform="translate(${px},${py})">` +
               `<title>${esc(node)} head ${esc(hash)} at height ${t.head_heights[node] ?? "?"}</title>` +
               `<rect width="${w}" height="${PILL_H}" rx="7" style="fill:${colour}"/>` +
               `<text x="${w / 2}" y="${PILL_H - 4}">${esc(label)}</text></g>`);
      px += w + 3;
    }
  }
  out.push("</g>");
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.innerHTML = out.join("");
  stats.blocksDrawn = blocks.length;
  $("window-range").textContent = `heights ${bottom}..${top} of ${t.max_height}` +
    (state.window.follow ? "" : " (scrolled back)");
  if (state.window.follow) $("tree-scroll").scrollTop = 0;
}

function byNodeName(a, b) {
  return String(a[0]).localeCompare(String(b[0]), undefined, {numeric: true});
}

function adoptWindow(w) {
  state.window = {top: w.top, size: w.size, follow: w.follow};
  const select = $("window-size");
  if (![...select.options].some((o) => Number(o.value) === w.size)) {
    select.add(new Option(String(w.size), String(w.size)));
  }
  select.value = String(w.size);
}

function setWindow(top, size, follow) {
  userWindow = true;
  state.window = {top: follow ? null : Math.max(0, top), size, follow};
  $("follow").checked = follow;
  sendWindow();
}

function windowTop() {
  return state.tree ? state.tree.top : 0;
}

// ---- partition ------------------------------------------------------------------------------
function renderPartition() {
  const p = state.partition || {groups: [], cuts: [], one_way: []};
  const up = new Map(state.nodes.map((n) => [n.name, n.up]));
  const groups = $("partition-groups");
  groups.innerHTML = p.groups.map((g, i) =>
    `<div class="group" data-group="${i}"><span class="muted">${p.partitioned ? "group " + (i + 1) : "all nodes"}</span> ` +
    g.map((n) => `<span class="chip ${up.get(n) ? "up" : "down"}" data-node="${esc(n)}">${esc(n)}</span>`).join("") +
    "</div>").join("");
  const cuts = (p.cuts || []).map(([a, b]) => `${a} ✕ ${b}`)
    .concat((p.one_way || []).map(([a, b]) => `${b} no longer hears ${a}`));
  $("partition-cuts").textContent = cuts.length ? `cuts: ${cuts.join(" · ")}` : "no cuts";
  const names = state.nodes.map((n) => n.name);
  const rows = ['<tr><th title="connected to">⇄</th>' +
    names.map((n) => `<th title="${esc(n)}">${esc(n.replace(/^node/, ""))}</th>`).join("") + "</tr>"];
  for (const a of names) {
    const peers = new Set(state.connectivity[a] || []);
    rows.push(`<tr><th title="${esc(a)}">${esc(a.replace(/^node/, ""))}</th>` + names.map((b) => {
      if (a === b) return '<td class="self"></td>';
      const on = peers.has(b);
      return `<td class="conn ${on ? "on" : "off"}" data-a="${esc(a)}" data-b="${esc(b)}" ` +
             `title="${esc(a)} ${on ? "is connected to" : "has no connection to"} ${esc(b)}"></td>`;
    }).join("") + "</tr>");
  }
  $("connectivity").innerHTML = rows.join("");
}

// ---- node cards -----------------------------------------------------------------------------
const cards = new Map();

function makeCard(name) {
  const card = document.createElement("div");
  card.className = "node-card";
  card.dataset.node = name;
  card.innerHTML = `<div class="card-head"><b>${esc(name)}</b> <span class="updown badge"></span>` +
    `<span class="role"></span></div>` +
    `<dl><dt>height</dt><dd class="height"></dd><dt>head</dt><dd class="head"></dd>` +
    `<dt>peers</dt><dd class="peers"></dd><dt>faults</dt><dd class="faults"></dd>` +
    `<dt>mempool</dt><dd class="mempool"></dd><dt>extra</dt><dd class="extra"></dd></dl>` +
    `<div class="actions">` + NODE_ACTIONS.map((a) =>
      `<button type="button" data-action="${a}">${a}</button>`).join("") + "</div>";
  card.querySelector(".actions").addEventListener("click", (ev) => {
    const action = ev.target.dataset && ev.target.dataset.action;
    if (action) control(`/api/node/${encodeURIComponent(name)}/${action}`, null);
  });
  return card;
}

function faultText(n) {
  const f = n.faults || {};
  const parts = [];
  if (f.blocked_peers) parts.push(`cut from ${f.blocked_peers}`);
  if (f.shaped_links) parts.push(`${f.shaped_links} shaped link(s)`);
  if (f.clock_offset_s) parts.push(`clock ${f.clock_offset_s > 0 ? "+" : ""}${f.clock_offset_s}s`);
  return parts.join(", ") || "none";
}

function renderNodes() {
  const box = $("node-cards");
  const t = state.tree;
  for (const n of state.nodes) {
    let card = cards.get(n.name);
    if (!card) {
      card = makeCard(n.name);
      cards.set(n.name, card);
      box.appendChild(card);
    }
    const head = t.heads[n.name] || n.head;
    const lane = t.head_lanes ? t.head_lanes[n.name] : null;
    const q = (sel) => card.querySelector(sel);
    card.classList.toggle("down", !n.up);
    const updown = q(".updown");
    updown.textContent = n.up ? (n.streaming ? "up" : "up (no stream)") : "down";
    updown.className = "updown badge " + (n.up ? "on" : "bad");
    q(".role").textContent = ["honest", "validator", undefined, null].includes(n.role) ? "" : n.role;
    // Height and head from the event stream (fresher than the /status poll the rest comes from).
    q(".height").textContent = t.head_heights[n.name] ?? n.height ?? "–";
    const headEl = q(".head");
    headEl.textContent = short(head, 12);
    headEl.title = head || "";
    headEl.dataset.lane = lane ?? "";
    headEl.style.color = lane == null ? "" : laneColour(lane);
    const peers = q(".peers");
    peers.textContent = n.up ? `${n.peer_count ?? n.peers.length}: ${n.peers.join(", ")}` : "–";
    q(".faults").textContent = n.up ? faultText(n) : "–";
    q(".mempool").textContent = n.mempool ?? "–";
    const extra = [];
    if (n.hashrate) extra.push(`${Math.round(n.hashrate)} H/s`);
    if (n.finalized) extra.push(n.finalized.epoch !== undefined
      ? `finalized ${n.finalized.epoch}` : `LIB ${n.finalized.height ?? n.finalized}`);
    if (n.reorgs) extra.push(`${n.reorgs} reorg(s)`);
    q(".extra").textContent = extra.join(", ") || "–";
  }
}

// ---- timeline -------------------------------------------------------------------------------
const when = (e) => e.rx_ts ?? e.ts;

function addEvents(events) {
  // Mostly in time order; the nemesis log is read a little later than the node streams.
  const last = state.timeline[state.timeline.length - 1];
  const inOrder = events.every((e, i) => when(e) >= when(i ? events[i - 1] : last || e));
  state.timeline.push(...events);
  if (state.timeline.length > MAX_TIMELINE_KEPT) {
    state.timeline.splice(0, state.timeline.length - MAX_TIMELINE_KEPT);
  }
  if (!inOrder) {
    state.timeline.sort((a, b) => when(a) - when(b));
    renderTimeline();
    return;
  }
  const list = $("timeline");
  const showRoutine = $("show-routine").checked;
  for (const e of events) {
    if (!showRoutine && ROUTINE.has(e.type)) continue;
    list.insertBefore(timelineRow(e), list.firstChild);
  }
  while (list.childElementCount > MAX_TIMELINE_ROWS) list.removeChild(list.lastChild);
  $("timeline-count").textContent = `${list.childElementCount} shown`;
}

function renderTimeline() {
  const list = $("timeline");
  const showRoutine = $("show-routine").checked;
  const rows = [];
  for (let i = state.timeline.length - 1; i >= 0 && rows.length < MAX_TIMELINE_ROWS; i--) {
    const e = state.timeline[i];
    if (showRoutine || !ROUTINE.has(e.type)) rows.push(timelineRow(e));
  }
  list.replaceChildren(...rows);
  $("timeline-count").textContent = `${rows.length} shown`;
}

function describe(e) {
  switch (e.type) {
    case "reorg":
      return `reorg depth ${e.depth}: ${short(e.old_head)} → ${short(e.new_head)} ` +
             `(common ancestor ${short(e.common_ancestor)} at height ${e.common_height ?? "?"})`;
    case "block_accepted":
      return `block ${short(e.hash)} at ${e.height}${e.main_chain === false ? " (side branch)" : ""}` +
             (e.peer && e.peer !== "local" ? ` from ${short(e.peer)}` : " (own)");
    case "head_changed":
      return `head ${short(e.head)} at ${e.height}`;
    case "fault_applied":
    case "fault_cleared": {
      const what = e.fault + (e.type === "fault_cleared" ? " cleared" : "");
      const on = e.nodes ? ` on ${e.nodes.join(", ")}` : "";
      const params = Object.entries(e.params || {})
        .filter(([k]) => !["grudge", "symmetric"].includes(k))
        .map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`);
      if (e.params && e.params.symmetric && e.params.symmetric.length) {
        params.unshift(`cuts ${e.params.symmetric.map(([a, b]) => `${a}✕${b}`).join(" ")}`);
      }
      return what + on + (params.length ? ` (${params.join(", ")})` : "");
    }
    case "node_started":
      return `started at height ${e.height}`;
    case "peer_connected":
    case "peer_disconnected":
      return `${short(e.peer)}${e.reason ? " (" + e.reason + ")" : ""}`;
    case "justified":
    case "finalized":
      return `epoch ${e.epoch} root ${short(e.root)}`;
    case "reorg_refused":
      return `refused a heavier branch to ${short(e.tip)} at ${e.height} (forks at ` +
             `${e.fork_height}, below the finalized checkpoint of epoch ${e.finalized_epoch})`;
    default: {
      const rest = {...e};
      for (const k of ["seq", "type", "node", "ts", "rx_ts", "source", "filled"]) delete rest[k];
      return JSON.stringify(rest).slice(0, 140);
    }
  }
}

function timelineRow(e) {
  const li = document.createElement("li");
  const classes = ["event", e.source === "nemesis" ? "nemesis" : "node", "t-" + e.type];
  if (e.type === "reorg") classes.push("reorg");
  if (e.type === "fault_applied" || e.type === "fault_cleared") classes.push("fault");
  if (ROUTINE.has(e.type)) classes.push("routine");
  li.className = classes.join(" ");
  li.dataset.type = e.type;
  if (e.type === "reorg") li.dataset.depth = e.depth;
  const who = e.source === "nemesis" ? "nemesis" : e.node;
  li.innerHTML = `<time>${clock(e.rx_ts ?? e.ts)}</time> <span class="who">${esc(who)}</span> ` +
    `<span class="kind">${esc(e.type)}</span> <span class="what">${esc(describe(e))}</span>`;
  return li;
}

// ---- replay scrubber ------------------------------------------------------------------------
// The history's timestamps (virtual in a simulated run) are only compared with each other; the
// browser's clock only paces playing.
const replay = {on: false, start: 0, end: 0, t: 0, playing: false, timer: null,
                wanted: null, inFlight: false};
window.dashboardReplay = replay;    // read by the browser test

function adoptReplay(pos) {
  if (!replay.on) {
    replay.on = true;
    $("replay-bar").hidden = false;
  }
  setWsState("replay", "on");
  replay.start = pos.start;
  replay.end = pos.end;
  $("replay-range").max = String(pos.end - pos.start);
  // While the page drives (playing, or a request pending) its own time stands.
  if (!replay.playing && !replay.inFlight && replay.wanted === null) showReplayTime(pos.t);
}

function showReplayTime(t) {
  replay.t = t;
  $("replay-range").value = String(t - replay.start);
  const at = (t - replay.start).toFixed(1), of = (replay.end - replay.start).toFixed(1);
  $("replay-time").textContent = `${at} s of ${of} s · ${clock(t)}`;
}

function seekReplay(t) {
  replay.wanted = Math.min(replay.end, Math.max(replay.start, t));
  showReplayTime(replay.wanted);
  if (!replay.inFlight) pumpReplay();
}

async function pumpReplay() {
  // One request at a time; a newer wish replaces one not yet sent.
  while (replay.wanted !== null) {
    const t = replay.wanted;
    replay.wanted = null;
    replay.inFlight = true;
    try {
      const resp = await fetch(`/api/replay?t=${encodeURIComponent(String(t))}`);
      const data = await resp.json();
      if (!resp.ok) showControl(`${resp.status}: ${data.error}`, true);
    } catch (err) {
      showControl(`replay request failed: ${err}`, true);
    } finally {
      replay.inFlight = false;
    }
  }
}

function playReplay() {
  if (replay.t >= replay.end) seekReplay(replay.start);
  replay.playing = true;
  $("replay-play").textContent = "❚❚ pause";
  let last = performance.now();
  replay.timer = setInterval(() => {
    const now = performance.now();
    const speed = parseFloat($("replay-speed").value) || 1;
    const t = Math.min(replay.end, replay.t + (now - last) / 1000 * speed);
    last = now;
    seekReplay(t);
    if (t >= replay.end) pauseReplay();
  }, PLAY_TICK_MS);
}

function pauseReplay() {
  replay.playing = false;
  clearInterval(replay.timer);
  replay.timer = null;
  $("replay-play").textContent = "▶ play";
}

function wireReplay() {
  $("replay-play").addEventListener("click", () => (replay.playing ? pauseReplay() : playReplay()));
  $("replay-range").addEventListener("input", (ev) => {
    seekReplay(replay.start + parseFloat(ev.target.value));
  });
}

// ---- fault controls -------------------------------------------------------------------------
function showControl(text, bad) {
  const el = $("control-status");
  el.textContent = text;
  el.className = bad ? "error" : "muted";
}

async function control(url, body) {
  showControl(`${url} …`, false);
  try {
    const resp = await fetch(url, {method: "POST", headers: {"Content-Type": "application/json"},
                                   body: JSON.stringify(body || {})});
    const data = await resp.json();
    if (!resp.ok) {
      showControl(`${resp.status}: ${data.error}`, true);
      return;
    }
    const e = data.entry;
    showControl(`${e.fault} ${e.type === "fault_cleared" ? "cleared" : "applied"} on ` +
                `${e.nodes.join(", ")}`, false);
  } catch (err) {
    showControl(`request failed: ${err}`, true);
  }
}

function wire() {
  $("fault-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    control("/api/partition", {groups: $("partition-input").value.trim()});
  });
  $("heal-btn").addEventListener("click", () => control("/api/heal", null));
  $("follow").addEventListener("change", (ev) => {
    setWindow(windowTop(), state.window.size, ev.target.checked);
  });
  $("older").addEventListener("click", () => {
    setWindow(windowTop() - Math.floor(state.window.size / 2), state.window.size, false);
  });
  $("newer").addEventListener("click", () => {
    const top = windowTop() + Math.floor(state.window.size / 2);
    const follow = !state.tree || top >= state.tree.max_height;
    setWindow(top, state.window.size, follow);
  });
  $("jump").addEventListener("click", () => {
    const h = parseInt($("jump-height").value, 10);
    if (Number.isFinite(h) && h >= 0) setWindow(h, state.window.size, false);
  });
  $("window-size").addEventListener("change", (ev) => {
    setWindow(windowTop(), parseInt(ev.target.value, 10), state.window.follow);
  });
  $("show-routine").addEventListener("change", () => renderTimeline());
  wireReplay();
}

window.dashboardRender = render;    // for measuring a redraw (scripts/bench_dashboard.py)
wire();
connect();
