// The "Collecteurs" page: the catalog, the pharmacy's accounts, invoices, requests and notices, kept
// live from the tenant's Server-Sent Events. Plain ES2020, no framework and no build step; the page's
// CSP allows no inline script, so every handler is bound here. Text from the API always goes through
// textContent (never innerHTML): a supplier's name or a message must not become markup.
"use strict";

(() => {
  const T = JSON.parse(document.getElementById("page-strings").textContent);
  const LANG = document.documentElement.lang === "en" ? "en" : "fr";
  const CSRF = document.querySelector('meta[name="csrf-token"]').content;

  const state = {
    catalog: [],            // catalog entries, in the API's order
    accounts: new Map(),    // id -> AccountView
    accountCards: new Map(),// id -> {li, parts}
    invoices: new Map(),    // id -> invoice (ledger view or the invoice event)
    notices: new Map(),     // notification id -> {subject, body, created_at}
    refreshTimers: new Map(),
    touched: new Map(),     // account id -> when an event or a fresh read last set it (performance.now())
    followUps: new Map(),
  };

  // --- the JSON API ------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, body) {
      const err = (body && body.error) || {};
      super(err.message || T.error_generic);
      this.status = status;
      this.code = err.code || "";
      this.field = err.field || null;
    }
  }

  async function api(method, path, body) {
    const headers = { "Accept": "application/json", "Accept-Language": LANG };
    if (method !== "GET") headers["X-CSRF-Token"] = CSRF;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const sep = path.includes("?") ? "&" : "?";
    const res = await fetch(`/api/v1${path}${sep}lang=${LANG}`, {
      method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (res.status === 204) return null;
    let data = null;
    try { data = await res.json(); } catch (_) { data = null; }
    if (!res.ok) throw new ApiError(res.status, data);
    return data;
  }

  // --- small DOM helpers ---------------------------------------------------------------------------

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k === "hidden") node.hidden = true;
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node;
  }

  const dateTime = new Intl.DateTimeFormat(T.locale, { dateStyle: "short", timeStyle: "short" });
  const dateOnly = new Intl.DateTimeFormat(T.locale, { dateStyle: "short", timeZone: "UTC" });

  function formatTime(iso, fallback) {
    if (!iso) return fallback;
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? fallback : dateTime.format(d);
  }

  function formatDay(isoDate) {
    const d = new Date(`${isoDate}T00:00:00Z`);
    return Number.isNaN(d.getTime()) ? String(isoDate) : dateOnly.format(d);
  }

  function formatAmount(amount, currency) {
    const n = Number(amount);
    if (!Number.isFinite(n)) return String(amount);
    try {
      return new Intl.NumberFormat(T.locale, { style: "currency", currency: currency || "EUR" }).format(n);
    } catch (_) {
      return `${n.toFixed(2)} ${currency || ""}`.trim();
    }
  }

  // Accents and case do not matter when a pharmacist types "cerp" or "Répartition".
  function fold(s) {
    return String(s || "").normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase();
  }

  // Trouble (the live stream lost, a refusal outside a form) shows in a banner until it is over.
  function warn(text) {
    const live = document.getElementById("live-status");
    live.textContent = text;
    live.hidden = !text;
  }

  // What a screen reader should hear after an action whose result shows elsewhere on the page.
  function announce(text) {
    document.getElementById("announce").textContent = text;
  }

  function loginLabel(kind) {
    return kind === "email" ? T.login_kind_email : T.login_kind_identifier;
  }

  function collectorById(id) {
    return state.catalog.find((c) => c.id === id) || null;
  }

  function accountLabel(accountId) {
    const a = state.accounts.get(accountId);
    if (!a) return "—";
    return `${a.collector_name || a.collector_id} · ${a.login}`;
  }

  // --- catalog -------------------------------------------------------------------------------------

  function renderCatalog() {
    const root = document.getElementById("catalog");
    root.replaceChildren();
    const groups = new Map();
    for (const c of state.catalog) {
      if (!groups.has(c.supplier)) groups.set(c.supplier, []);
      groups.get(c.supplier).push(c);
    }
    const suppliers = [...groups.keys()].sort((a, b) => a.localeCompare(b, T.locale));
    for (const supplier of suppliers) {
      const list = el("ul", { class: "collectors" });
      for (const c of groups.get(supplier)) list.append(collectorItem(c));
      root.append(el("section", { class: "supplier-group", "data-supplier": supplier },
        el("h3", { text: supplier }), list));
    }
    filterCatalog();
    updateActivateButtons();
  }

  function collectorItem(c) {
    const base = `activate-${c.id}`;
    const button = el("button", {
      type: "button", class: "primary activate", "aria-expanded": "false", "aria-controls": `${base}-form`,
      "aria-describedby": `${base}-name`, text: T.activate,
    });
    const login = el("input", {
      id: `${base}-login`, name: "login", type: c.login_kind === "email" ? "email" : "text", required: true,
      maxlength: 320, "aria-describedby": `${base}-error`, autocomplete: c.login_kind === "email" ? "email" : "username", spellcheck: "false",
      autocapitalize: "off",
    });
    const password = el("input", {
      id: `${base}-password`, name: "password", type: "password", required: true, maxlength: 1024,
      autocomplete: "current-password", "aria-describedby": `${base}-error`,
    });
    const error = el("p", { class: "form-error", id: `${base}-error`, role: "alert" });
    const cancel = el("button", { type: "button", class: "secondary", text: T.cancel });
    const form = el("form", { id: `${base}-form`, class: "activate-form", hidden: true, "aria-labelledby": `${base}-name` },
      el("div", { class: "field" }, el("label", { for: login.id, text: loginLabel(c.login_kind) }), login),
      el("div", { class: "field" }, el("label", { for: password.id, text: T.password }), password),
      error,
      el("div", { class: "actions" }, el("button", { type: "submit", class: "primary", text: T.validate }), cancel));

    const toggle = (open) => {
      form.hidden = !open;
      button.setAttribute("aria-expanded", String(open));
      if (open) login.focus();
      else { error.textContent = ""; form.reset(); }
    };
    button.addEventListener("click", () => toggle(form.hidden));
    cancel.addEventListener("click", () => { toggle(false); button.focus(); });
    form.addEventListener("keydown", (e) => { if (e.key === "Escape") { toggle(false); button.focus(); } });
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      error.textContent = "";
      if (!form.reportValidity()) return;
      const submit = form.querySelector('button[type="submit"]');
      submit.disabled = true;
      try {
        const account = await api("POST", "/accounts", {
          collector_id: c.id, login: login.value.trim(), password: password.value,
        });
        upsertAccount(account);
        toggle(false);
        announce(`${c.name} · ${account.login} : ${statusLabel(account.status)}`);
        button.focus();
      } catch (err) {
        error.textContent = err.message;
        password.value = "";
        (err.field === "login" ? login : password).focus();
      } finally {
        submit.disabled = false;
      }
    });

    const li = el("li", { class: "collector", "data-collector-id": c.id, "data-search": fold(`${c.name} ${c.supplier} ${c.id} ${c.portal_url}`) },
      el("div", { class: "collector-head" },
        el("div", {},
          el("span", { class: "collector-name", id: `${base}-name`, text: c.name }),
          el("span", { class: "login-kind", text: `${T.asks_for} ${loginLabel(c.login_kind)}` })),
        button),
      form);
    return li;
  }

  function filterCatalog() {
    const q = fold(document.getElementById("search").value.trim());
    let shown = 0;
    for (const group of document.querySelectorAll("#catalog .supplier-group")) {
      let inGroup = 0;
      for (const li of group.querySelectorAll(".collector")) {
        const match = !q || li.dataset.search.includes(q) || fold(group.dataset.supplier).includes(q);
        li.hidden = !match;
        if (match) inGroup += 1;
      }
      group.hidden = inGroup === 0;
      shown += inGroup;
    }
    const empty = document.getElementById("catalog-empty");
    empty.textContent = T.search_empty;
    empty.hidden = shown > 0;
  }

  // "Activer" becomes "add another account" once the collector has one: the help page offers two.
  function updateActivateButtons() {
    const counts = new Map();
    for (const a of state.accounts.values()) counts.set(a.collector_id, (counts.get(a.collector_id) || 0) + 1);
    for (const li of document.querySelectorAll("#catalog .collector")) {
      const n = counts.get(li.dataset.collectorId) || 0;
      li.querySelector("button.activate").textContent = n > 0 ? T.activate_another : T.activate;
    }
  }

  // --- accounts ------------------------------------------------------------------------------------

  function statusLabel(status) {
    return T[`status_${status}`] || status;
  }

  // Asking the portal again only helps when the pharmacist fixed something on the portal itself; after
  // a rejected password it would only add a bad login (they use "Modifier" instead).
  const RETRYABLE = new Set(["action_required_on_site", "account_locked", "two_factor_required"]);

  function upsertAccount(a) {
    if (!a || !a.id) return;
    if (a.status === "deleted") { removeAccount(a.id); return; }
    state.touched.set(a.id, performance.now());
    state.accounts.set(a.id, a);
    let card = state.accountCards.get(a.id);
    if (!card) {
      card = accountCard(a);
      state.accountCards.set(a.id, card);
      document.getElementById("accounts").append(card.li);
    }
    const p = card.parts;
    p.title.textContent = `${a.collector_name || a.collector_id} · ${a.login}`;
    p.badge.textContent = statusLabel(a.status);
    p.badge.className = `badge status-${a.status}`;
    p.message.textContent = a.message || "";
    p.message.hidden = !a.message;
    p.last.textContent = formatTime(a.last_success_at, T.never);
    p.next.textContent = formatTime(a.next_run_at, T.not_planned);
    p.count.textContent = String(a.invoice_count ?? 0);
    p.retry.hidden = !(a.status === "action_required" && RETRYABLE.has(a.error_code));
    card.li.dataset.status = a.status;
    document.getElementById("accounts-empty").hidden = state.accounts.size > 0;
    updateActivateButtons();
    refreshInvoiceAccountLabels();
  }

  function removeAccount(id) {
    state.touched.set(id, performance.now());
    state.accounts.delete(id);
    const card = state.accountCards.get(id);
    if (card) card.li.remove();
    state.accountCards.delete(id);
    document.getElementById("accounts-empty").hidden = state.accounts.size > 0;
    updateActivateButtons();
  }

  function accountCard(a) {
    const base = `account-${a.id}`;
    const title = el("h3", { id: `${base}-title` });
    const badge = el("span", { class: "badge" });
    const message = el("p", { class: "account-message" });
    const last = el("dd", {});
    const next = el("dd", {});
    const count = el("dd", { class: "invoice-count" });
    const modify = el("button", { type: "button", class: "secondary", "aria-expanded": "false",
      "aria-controls": `${base}-edit`, "aria-describedby": title.id, text: T.modify });
    const retry = el("button", { type: "button", class: "secondary", "aria-describedby": title.id, text: T.retry, hidden: true });
    const remove = el("button", { type: "button", class: "danger-outline", "aria-describedby": title.id, text: T.delete });

    const collector = collectorById(a.collector_id);
    const kind = collector ? collector.login_kind : "identifier";
    const login = el("input", { id: `${base}-login`, name: "login", type: kind === "email" ? "email" : "text",
      required: true, maxlength: 320, autocomplete: "username", spellcheck: "false", autocapitalize: "off",
      "aria-describedby": `${base}-error` });
    const password = el("input", { id: `${base}-password`, name: "password", type: "password", required: true,
      maxlength: 1024, autocomplete: "new-password", "aria-describedby": `${base}-error` });
    const error = el("p", { class: "form-error", id: `${base}-error`, role: "alert" });
    const cancel = el("button", { type: "button", class: "secondary", text: T.cancel });
    const form = el("form", { id: `${base}-edit`, class: "edit-form", hidden: true, "aria-labelledby": title.id },
      el("div", { class: "field" }, el("label", { for: login.id, text: loginLabel(kind) }), login),
      el("div", { class: "field" }, el("label", { for: password.id, text: T.password }), password),
      error,
      el("div", { class: "actions" }, el("button", { type: "submit", class: "primary", text: T.validate }), cancel));

    const toggle = (open) => {
      form.hidden = !open;
      modify.setAttribute("aria-expanded", String(open));
      if (open) {
        login.value = state.accounts.get(a.id)?.login || "";
        password.focus();
      } else { error.textContent = ""; form.reset(); }
    };
    modify.addEventListener("click", () => toggle(form.hidden));
    cancel.addEventListener("click", () => { toggle(false); modify.focus(); });
    form.addEventListener("keydown", (e) => { if (e.key === "Escape") { toggle(false); modify.focus(); } });
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      error.textContent = "";
      if (!form.reportValidity()) return;
      const submit = form.querySelector('button[type="submit"]');
      submit.disabled = true;
      try {
        const current = state.accounts.get(a.id);
        const body = { password: password.value };
        const newLogin = login.value.trim();
        if (current && newLogin !== current.login) body.login = newLogin;
        upsertAccount(await api("PUT", `/accounts/${encodeURIComponent(a.id)}/credentials`, body));
        toggle(false);
        modify.focus();
      } catch (err) {
        error.textContent = err.message;
        password.value = "";
        password.focus();
      } finally {
        submit.disabled = false;
      }
    });
    retry.addEventListener("click", async () => {
      try { upsertAccount(await api("POST", `/accounts/${encodeURIComponent(a.id)}/retry`)); }
      catch (err) { warn(err.message); }
    });
    remove.addEventListener("click", () => confirmDelete(a.id, remove));

    const li = el("li", { class: "account", "data-account-id": a.id, "aria-labelledby": title.id },
      el("div", { class: "account-head" }, title, badge),
      message,
      el("div", { class: "account-body" },
        el("dl", { class: "account-facts" },
          el("div", {}, el("dt", { text: T.last_collection }), last),
          el("div", {}, el("dt", { text: T.next_collection }), next),
          el("div", {}, el("dt", { text: T.invoice_count }), count)),
        el("div", { class: "actions" }, modify, retry, remove)),
      form);
    return { li, parts: { title, badge, message, last, next, count, retry } };
  }

  function confirmDelete(id, opener) {
    const dialog = document.getElementById("delete-dialog");
    document.getElementById("delete-account").textContent = accountLabel(id);
    dialog.returnValue = "";
    dialog.addEventListener("close", async () => {
      if (dialog.returnValue !== "confirm") { opener.focus(); return; }
      try {
        await api("DELETE", `/accounts/${encodeURIComponent(id)}`);
        removeAccount(id);
        document.getElementById("accounts-title").focus();
      } catch (err) {
        warn(err.message);
        opener.focus();
      }
    }, { once: true });
    dialog.showModal();
  }

  // Ask for an account again, once per burst: an invoice event means its count moved (300 ms), and a
  // status event is followed by the scheduler's next run, which the accounts service records without
  // an event of its own (2 s: read it once it landed).
  function refreshAccountSoon(id, delayMs = 300, timers = state.refreshTimers) {
    if (!id || timers.has(id)) return;
    timers.set(id, setTimeout(async () => {
      timers.delete(id);
      try { upsertAccount(await api("GET", `/accounts/${encodeURIComponent(id)}`)); }
      catch (err) { if (err.status === 404) removeAccount(id); }
    }, delayMs));
  }

  // --- invoices ------------------------------------------------------------------------------------

  function addInvoice(inv) {
    if (!inv || !inv.id || state.invoices.has(inv.id)) return;
    state.invoices.set(inv.id, inv);
    const tbody = document.querySelector("#invoices tbody");
    const link = el("a", { href: `/api/v1/invoices/${encodeURIComponent(inv.id)}/pdf`, download: true,
      text: T.download, "aria-label": `${T.download} ${inv.number}` });
    const row = el("tr", { "data-invoice-id": inv.id, "data-account-id": inv.account_id },
      el("th", { scope: "row", text: inv.number }),
      el("td", { text: formatDay(inv.issue_date) }),
      el("td", { text: inv.kind === "credit_note" ? T.kind_credit_note : T.kind_invoice }),
      el("td", { class: "num", text: formatAmount(inv.amount, inv.currency) }),
      el("td", { class: "invoice-account", text: accountLabel(inv.account_id) }),
      el("td", {}, link));
    // Newest issue date first, as the portal lists them.
    const rows = [...tbody.children];
    const before = rows.find((r) => state.invoices.get(r.dataset.invoiceId)?.issue_date < inv.issue_date);
    tbody.insertBefore(row, before || null);
    document.getElementById("invoices").hidden = false;
    document.getElementById("invoices-empty").hidden = true;
  }

  function refreshInvoiceAccountLabels() {
    for (const row of document.querySelectorAll("#invoices tbody tr")) {
      row.querySelector(".invoice-account").textContent = accountLabel(row.dataset.accountId);
    }
  }

  // --- requests and notices ------------------------------------------------------------------------

  function renderRequests(requests) {
    const list = document.getElementById("requests");
    list.replaceChildren();
    for (const r of requests) {
      list.append(el("li", { class: "request", "data-request-id": r.id, "data-status": r.status },
        el("span", { class: "request-supplier", text: r.supplier }),
        el("span", { class: `badge request-${r.status}`, text: T[`request_${r.status}`] || r.status }),
        r.reason ? el("p", { class: "request-reason", text: r.reason }) : null));
    }
    document.getElementById("requests-empty").hidden = requests.length > 0;
  }

  function addNotice(id, subject, body, createdAt) {
    if (!id || state.notices.has(id)) return;
    state.notices.set(id, { subject, body, createdAt });
    const items = [...state.notices.entries()].sort((x, y) => String(y[1].createdAt).localeCompare(String(x[1].createdAt)));
    const list = document.getElementById("notices");
    list.replaceChildren(...items.map(([nid, n]) => el("li", { class: "notice", "data-notice-id": nid },
      el("strong", { text: n.subject }), el("p", { text: n.body }),
      el("span", { class: "notice-time", text: formatTime(n.createdAt, "") }))));
    document.getElementById("notices-empty").hidden = true;
  }

  async function loadRequests() {
    renderRequests((await api("GET", "/requests")).requests || []);
  }

  async function loadNotices() {
    const reply = await api("GET", "/notifications");
    for (const n of reply.notifications || []) {
      // The history keeps one record per channel; the page shows the in-app one.
      if (n.channel && n.channel !== "in_app") continue;
      addNotice(n.id, n.subject, n.body, n.created_at);
    }
  }

  function bindRequestForm() {
    const form = document.getElementById("request-form");
    const error = document.getElementById("request-error");
    const ok = document.getElementById("request-ok");
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      error.textContent = "";
      ok.textContent = "";
      const supplier = form.elements.supplier;
      if (!supplier.value.trim()) { supplier.setAttribute("aria-invalid", "true"); form.reportValidity(); supplier.focus(); return; }
      supplier.removeAttribute("aria-invalid");
      const body = { supplier: supplier.value.trim() };
      const url = form.elements.portal_url.value.trim();
      const comment = form.elements.comment.value.trim();
      if (url) body.portal_url = url;
      if (comment) body.comment = comment;
      const submit = form.querySelector('button[type="submit"]');
      submit.disabled = true;
      try {
        await api("POST", "/requests", body);
        form.reset();
        ok.textContent = T.request_sent;
        await loadRequests();
      } catch (err) {
        error.textContent = err.message;
        const field = err.field && form.elements[err.field];
        if (field) { field.setAttribute("aria-invalid", "true"); field.focus(); }
      } finally {
        submit.disabled = false;
      }
    });
  }

  // --- loading and live updates --------------------------------------------------------------------

  async function loadAll() {
    const started = performance.now();
    const [catalog, accounts, invoices] = await Promise.all([
      api("GET", "/catalog"), api("GET", "/accounts"), api("GET", "/invoices?limit=500"),
    ]);
    const firstCatalog = state.catalog.length === 0;
    state.catalog = catalog.collectors || [];
    if (firstCatalog || document.querySelectorAll("#catalog .activate-form:not([hidden])").length === 0) renderCatalog();
    // An account an event (or an activation) set while this list was on its way is newer than the
    // list's copy: it is kept as it is, and not removed for missing from the list.
    const newer = (id) => (state.touched.get(id) || 0) > started;
    const seen = new Set();
    for (const a of accounts.accounts || []) { seen.add(a.id); if (!newer(a.id)) upsertAccount(a); }
    for (const id of [...state.accounts.keys()]) if (!seen.has(id) && !newer(id)) removeAccount(id);
    for (const inv of invoices.invoices || []) addInvoice(inv);
    await Promise.all([loadRequests(), loadNotices()]);
  }

  function reportLoadError(err) {
    warn(err.message || T.error_generic);
  }

  function listen() {
    const source = new EventSource(`/api/v1/events?lang=${LANG}`, { withCredentials: true });
    let lost = false;
    const on = (name, handler) => source.addEventListener(name, (e) => {
      let data;
      try { data = JSON.parse(e.data); } catch (_) { return; }
      handler(data);
    });
    on("account", (a) => { upsertAccount(a); refreshAccountSoon(a.id, 2000, state.followUps); });
    on("account_deleted", (a) => removeAccount(a.id));
    // The server dropped a client that fell behind: its stream ends and EventSource reconnects; what
    // was missed is read again on the next open.
    on("dropped", () => { lost = true; });
    on("invoice", (inv) => { addInvoice(inv); refreshAccountSoon(inv.account_id); });
    on("request", () => { loadRequests().catch(reportLoadError); });
    on("notification", (n) => addNotice(n.notification_id || n.id, n.subject, n.body, n.occurred_at || n.created_at));
    source.addEventListener("open", () => {
      // Events are not replayed: whatever happened before the stream was listening (the first time,
      // between the page's first read and now; later, while it was down) is read again.
      if (lost) { lost = false; warn(""); }
      loadAll().then(() => { document.body.dataset.live = "open"; }, reportLoadError);
    });
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED) { warn(T.live_lost); setTimeout(listen, 5000); return; }
      lost = true;
      delete document.body.dataset.live;
      warn(T.live_lost);
    });
  }

  function bindSignOut() {
    // The sign-out is a cookie-authenticated POST: it needs the CSRF header a plain form cannot send.
    const form = document.getElementById("signout-form");
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        await fetch("/signout", { method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": CSRF } });
      } finally {
        window.location.assign(`/?lang=${LANG}`);
      }
    });
  }

  document.getElementById("search").addEventListener("input", filterCatalog);
  bindRequestForm();
  bindSignOut();
  listen();
  loadAll().catch(reportLoadError);
})();
