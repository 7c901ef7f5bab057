// The licensetest console. Plain script, no build step, no external fetches.
// It reads the state from /admin/events (Server-Sent Events) and sends the
// admin commands with fetch. The admin token is in an HttpOnly cookie that
// opening the console URL set; this script never sees it, and the curl
// commands it shows say $TOKEN instead.
"use strict";

(function () {
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
  const endpoints = [
    ["all", "all endpoints"], ["register", "register_instance"], ["begin", "begin_session"],
    ["extend", "extend_session"], ["end", "end_session"],
  ];
  let state = null;
  let serverOffset = 0; // server clock minus this browser's clock, in ms

  // el builds an element with text content (never HTML from data).
  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function row(cells, cls) {
    const tr = el("tr", null, cls);
    for (const c of cells) {
      const td = el("td");
      if (c instanceof Node) td.appendChild(c); else td.textContent = c === undefined ? "" : String(c);
      tr.appendChild(td);
    }
    return tr;
  }

  function fill(tbody, rows) {
    tbody.replaceChildren(...rows);
  }

  function short(guid) { return guid ? guid.slice(0, 8) : ""; }

  function clock(t) {
    const d = new Date(t);
    if (isNaN(d)) return "";
    return d.toISOString().slice(11, 19);
  }

  function fmtDur(ms) {
    if (ms < 0) return "lapsed";
    const s = Math.round(ms / 1000);
    if (s < 60) return s + "s";
    const m = Math.floor(s / 60);
    if (m < 60) return m + "m" + String(s % 60).padStart(2, "0") + "s";
    return Math.floor(m / 60) + "h" + String(m % 60).padStart(2, "0") + "m";
  }

  // ---- the fault forms, built from this table rather than repeated markup ----

  // h builds an element with attributes (undefined ones left out) and children.
  function h(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined) e.setAttribute(k, v === true ? "" : v);
    e.append(...kids);
    return e;
  }

  const input = (id, label, name, attrs) => [h("label", { for: id }, label), h("input", { id, name, ...attrs })];
  const select = (id, label, name, attrs, options) => [h("label", { for: id }, label),
    h("select", { id, name, ...attrs }, ...(options || []).map(([v, text]) => new Option(text, v)))];
  const endpoint = (id, label) => select(id, label, "endpoint", { class: "endpoint" });
  const button = (text, attrs) => h("button", { type: "submit", ...attrs }, text);
  const numeric = (value) => ({ value, size: 4, inputmode: "numeric" });

  // form is a fault form: rows of labelled fields and buttons, and the
  // equivalent curl command.
  function form(command, legend, rows, id, legendClass) {
    return h("form", { class: "control", id, "data-command": command },
      h("fieldset", null, h("legend", { class: legendClass }, legend),
        ...rows.map((r) => h("div", { class: "row" }, ...r.flat())),
        h("code", { class: "curl", "aria-label": "equivalent curl command" })));
  }

  function faultForms() {
    const hidden = "visually-hidden";
    return [
      form("down", "Server down / up", [
        [select("down-mode", "Mode", "mode", {}, [["refuse", "refuse connections"], ["reset", "reset connections"], ["503", "answer 503"]]),
          input("down-for", "For", "for", { placeholder: "e.g. 30s (empty: until up)", size: 12 })],
        [button("Down", { id: "down-btn", class: "danger" }), button("Up", { id: "up-btn", "data-command": "up", class: "ok" })],
      ], "down-form"),
      form("latency", "Latency", [[endpoint("lat-ep", "Endpoint"),
        input("lat-d", "Delay", "d", { placeholder: "e.g. 2s", size: 8, required: true }), button("Set latency")]]),
      form("fail", "Fail the next requests", [
        [endpoint("fail-ep", "Endpoint"), input("fail-n", "Count", "n", numeric(3))],
        [input("fail-status", "Status", "status", numeric(503)),
          input("fail-ra", "Retry-After", "retry_after", { placeholder: "e.g. 10s", size: 8 }), button("Fail next")],
      ]),
      form("fault", "Spoil the next replies", [[
        select("fault-kind", "Fault", "kind", {}, [["truncate", "truncate"], ["garbage", "garbage"],
          ["drop", "drop (reset after processing)"], ["cut_body", "cut body"], ["replay", "replay an old reply"], ["bad_seal", "bad seal"]]),
        endpoint("fault-ep", "Endpoint"), input("fault-n", "Count", "n", numeric(1)), button("Inject"),
      ]]),
      form("revoke", "Licence state and control options", [
        [select("lic-select", "Licence", undefined, { class: "licence-select" }),
          h("input", { type: "hidden", name: "product" }), h("input", { type: "hidden", name: "key" })],
        [button("Revoke", { "data-command": "revoke", class: "danger" }), button("Expire", { "data-command": "expire", class: "danger" }),
          button("Reinstate", { "data-command": "reinstate", class: "ok" })],
        [input("ctl-session", "Session", "session", { placeholder: "e.g. 2m", size: 8, "data-only": "control" }),
          input("ctl-grace", "Grace", "grace", { placeholder: "e.g. 10m", size: 8, "data-only": "control" }),
          button("Set control options", { "data-command": "control" })],
      ], "licence-form"),
      form("license", "Add or change a licence", [
        [input("add-product", "Product", "product", { size: 10, required: true }),
          input("add-key", "Key", "key", { size: 10, required: true }),
          input("add-seats", "Seats", "seats", { size: 3, placeholder: "0 = ∞", inputmode: "numeric" })],
        [input("add-session", "Session", "session", { size: 6, placeholder: "10m" }),
          input("add-grace", "Grace", "grace", { size: 6, placeholder: "0s" }),
          input("add-features", "Features", "features", { size: 10 }), button("Save licence")],
      ]),
      form("skew", "Clock skew, Retry-After, Content-Type", [
        [input("skew-d", "Skew", "d", { placeholder: "e.g. -1h", size: 8, required: true }), button("Set skew")]]),
      form("retry_after", "Retry-After on injected failures", [[endpoint("ra-ep", "Retry-After at"),
        input("ra-d", "of", "d", { placeholder: "e.g. 30s", size: 8, required: true }), button("Set Retry-After")]], undefined, hidden),
      form("content_type", "Content-Type of replies", [[endpoint("ct-ep", "Content-Type at"),
        input("ct-ct", "as", "ct", { placeholder: "e.g. text/html", size: 12, required: true }), button("Set Content-Type")]], undefined, hidden),
    ];
  }

  // ---- commands and their curl equivalents ----

  function formParams(form, command) {
    const p = new URLSearchParams();
    for (const input of $$("input, select", form)) {
      if (!input.name || input.value === "") continue;
      const only = input.dataset.only;
      if (only && only !== command) continue;
      if (command === "up" && input.name !== "") continue; // up takes none
      if (input.name === "endpoint" && input.value === "all") continue;
      p.append(input.name, input.value.trim());
    }
    return p;
  }

  function curl(command, p) {
    const q = p.toString();
    const url = location.origin + "/admin/" + command + (q ? "?" + q : "");
    return "curl -X POST -H 'Authorization: Bearer $TOKEN' '" + url + "'";
  }

  function updateCurl(form, command) {
    const code = $(".curl", form);
    if (code) code.textContent = curl(command, formParams(form, command));
  }

  async function send(command, p) {
    const result = $("#result");
    result.className = "result";
    result.textContent = command + "…";
    try {
      const resp = await fetch("/admin/" + command + "?" + p.toString(), {
        method: "POST", credentials: "same-origin", cache: "no-store",
      });
      const body = await resp.json().catch(() => ({ ok: false, error: "HTTP " + resp.status }));
      if (resp.ok && body.ok) {
        result.textContent = command + ": done";
        result.classList.add("good");
      } else {
        result.textContent = command + ": " + (body.error || "HTTP " + resp.status);
        result.classList.add("bad");
      }
    } catch (e) {
      result.textContent = command + ": the admin API is unreachable";
      result.classList.add("bad");
    }
  }

  function setupForms() {
    for (const sel of $$("select.endpoint")) {
      for (const [v, label] of endpoints) sel.appendChild(new Option(label, v));
    }
    for (const form of $$("form.control")) {
      form.dataset.current = form.dataset.command;
      form.addEventListener("input", () => updateCurl(form, form.dataset.current));
      form.addEventListener("change", () => updateCurl(form, form.dataset.current));
      for (const b of $$("button[type=submit]", form)) {
        const show = () => {
          form.dataset.current = b.dataset.command || form.dataset.command;
          updateCurl(form, form.dataset.current);
        };
        b.addEventListener("focus", show);
        b.addEventListener("mouseenter", show);
      }
      form.addEventListener("submit", (ev) => {
        ev.preventDefault();
        const b = ev.submitter;
        const command = (b && b.dataset.command) || form.dataset.command;
        form.dataset.current = command;
        updateCurl(form, command);
        send(command, formParams(form, command));
      });
      updateCurl(form, form.dataset.command);
    }
    $("#lic-select").addEventListener("change", syncLicence);

    const sf = $("#scenario-form");
    const scurl = () => {
      $("#scenario-curl").textContent = "curl -X POST -H 'Authorization: Bearer $TOKEN' --data-binary @scenario.txt '" +
        location.origin + "/admin/scenario?name=scenario.txt'";
    };
    scurl();
    sf.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const result = $("#result");
      result.className = "result";
      const resp = await fetch("/admin/scenario?name=console", {
        method: "POST", credentials: "same-origin", body: $("#scenario-text").value,
        headers: { "Content-Type": "text/plain" },
      });
      const body = await resp.json().catch(() => ({ ok: false }));
      result.textContent = body.ok ? "scenario: started" : "scenario: " + (body.error || "HTTP " + resp.status);
      result.classList.add(body.ok ? "good" : "bad");
    });
    $("#scenario-stop").addEventListener("click", () => send("scenario/stop", new URLSearchParams()));
  }

  function syncLicence() {
    const form = $("#licence-form");
    const v = $("#lic-select").value;
    const i = v.indexOf("\u0000");
    $("input[name=product]", form).value = i < 0 ? "" : v.slice(0, i);
    $("input[name=key]", form).value = i < 0 ? "" : v.slice(i + 1);
    updateCurl(form, form.dataset.current || form.dataset.command);
  }

  // ---- rendering ----

  function renderLicences(ls) {
    const rows = ls.map((l) => {
      const actions = el("span", null, "actions");
      for (const [cmd, label, cls] of [["revoke", "Revoke", "danger"], ["reinstate", "Reinstate", "ok"]]) {
        const b = el("button", label, "small " + cls);
        b.type = "button";
        b.setAttribute("aria-label", label + " " + l.product + " " + l.key);
        b.addEventListener("click", () => send(cmd, new URLSearchParams({ product: l.product, key: l.key })));
        actions.appendChild(b);
      }
      const seats = l.seats_in_use + " / " + (l.seats === 0 ? "∞" : l.seats);
      return row([l.product, l.key, el("span", l.state, "state " + l.state), seats, l.session, l.grace, l.features, actions]);
    });
    fill($("#licences tbody"), rows);
    const sel = $("#lic-select");
    const before = sel.value;
    sel.replaceChildren(...ls.map((l) => new Option(l.product + " / " + l.key, l.product + "\u0000" + l.key)));
    if (before && ls.some((l) => l.product + "\u0000" + l.key === before)) sel.value = before;
    syncLicence();
  }

  function renderSessions(ss, now) {
    fill($("#sessions tbody"), ss.map((s) => row([
      el("span", short(s.instance_guid), "mono"), s.product, clock(s.started),
      el("span", fmtDur(new Date(s.expires) - now), "countdown"), s.extensions,
    ])));
    $("#sessions-count").textContent = ss.length;
    $("#sessions-empty").hidden = ss.length > 0;
  }

  function renderInstances(is) {
    fill($("#instances tbody"), is.map((i) => row([
      el("span", short(i.guid), "mono"), i.product, i.host_name, i.name, clock(i.first_registered_at),
    ])));
    $("#instances-count").textContent = is.length;
  }

  function renderLog(log) {
    const rows = log.slice().reverse().map((r) => {
      const cls = r.status >= 500 || r.fault || r.down ? "bad" : r.status >= 400 ? "warn" : "";
      let fault = r.fault || "";
      if (r.down) fault = "down (503)";
      return row([r.seq, clock(r.time), r.endpoint, r.status, r.latency_ms.toFixed(1) + " ms", fault, r.sealed ? "yes" : "no"], cls);
    });
    fill($("#log tbody"), rows);
    $("#log-empty").hidden = log.length > 0;
  }

  function renderFaults(st) {
    const items = [];
    if (st.down) items.push("server down (" + st.down_mode + ")");
    for (const [ep, d] of Object.entries(st.faults.latency)) items.push("latency " + d + " at " + ep);
    for (const [ep, d] of Object.entries(st.faults.retry_after)) items.push("Retry-After " + d + " at " + ep);
    for (const [ep, ct] of Object.entries(st.faults.content_type)) items.push("Content-Type " + ct + " at " + ep);
    if (st.faults.skew !== "0s") items.push("clock skew " + st.faults.skew);
    for (const q of st.faults.queued) {
      items.push(q.kind + (q.status ? " " + q.status : "") + " at " + q.endpoint + " × " + (q.left < 0 ? "∞" : q.left));
    }
    $("#faults-bar").classList.toggle("has-faults", items.length > 0);
    if (items.length === 0) {
      $("#faults").replaceChildren(el("li", "none"));
      return;
    }
    $("#faults").replaceChildren(...items.map((t) => el("li", t, "active")));
  }

  function renderScenario(sc) {
    const ol = $("#timeline");
    if (!sc) {
      $("#scenario-name").textContent = "No scenario has run.";
      ol.replaceChildren();
      return;
    }
    $("#scenario-name").textContent = sc.name + (sc.running ? " — running" : " — finished") + (sc.error ? ": " + sc.error : "");
    ol.replaceChildren(...sc.steps.map((s, i) => {
      const li = el("li", null, s.done ? (s.error ? "step failed" : "step done") : "step");
      if (sc.running && i === sc.next) {
        li.classList.add("current");
        li.setAttribute("aria-current", "step");
      }
      li.appendChild(el("span", "at " + s.at, "at"));
      li.appendChild(el("span", s.text, "text"));
      if (s.error) li.appendChild(el("span", s.error, "err"));
      return li;
    }));
  }

  function renderActions(as) {
    $("#actions").replaceChildren(...as.slice().reverse().map((a) => el("li", clock(a.time) + "  " + a.command)));
  }

  function render(st) {
    state = st;
    serverOffset = new Date(st.time) - Date.now();
    const badge = $("#server-status");
    badge.textContent = st.down ? "down (" + st.down_mode + ")" : "up";
    badge.className = "badge " + (st.down ? "down" : "up");
    renderLicences(st.licenses);
    renderSessions(st.sessions, new Date(st.time));
    renderInstances(st.instances);
    renderLog(st.log);
    renderFaults(st);
    renderScenario(st.scenario);
    renderActions(st.actions);
    tick();
  }

  function tick() {
    if (!state) return;
    const now = new Date(Date.now() + serverOffset);
    $("#server-time").textContent = "server time " + clock(now);
    const cds = $$("#sessions .countdown");
    state.sessions.forEach((s, i) => { if (cds[i]) cds[i].textContent = fmtDur(new Date(s.expires) - now); });
  }

  function connect() {
    const live = $("#live");
    const es = new EventSource("/admin/events");
    es.addEventListener("state", (ev) => {
      live.textContent = "live";
      live.className = "badge on";
      render(JSON.parse(ev.data));
    });
    es.onerror = () => {
      live.textContent = "reconnecting…";
      live.className = "badge off";
    };
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("aside.controls").append(...faultForms());
    setupForms();
    connect();
    setInterval(tick, 1000);
  });
})();
