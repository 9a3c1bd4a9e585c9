// The building panel: renders what the mock pushes on its websocket (/_mock/panel/live) and acts through the
// control API (/_mock/...). Plain browser JavaScript, no library, nothing fetched from elsewhere.
"use strict";

(() => {
  const control = new URL("./", location.href); // the page is /_mock/panel: this is /_mock/
  const intercomTemplate = document.getElementById("intercom-template");
  const cards = new Map(); // intercom id -> its card's elements
  let state = null;
  let receivedAt = 0; // performance.now() when the state arrived
  let retryDelay = 250;

  // ------------------------------------------------------------------ time on the simulated clock

  function simulatedNow() {
    const now = Date.parse(state.clock.now);
    return state.clock.frozen ? now : now + (performance.now() - receivedAt);
  }

  // "2030-01-01 08:00:00" in UTC, cut to ``length`` characters (16: to the minute)
  function utcText(ms, length = 19) {
    return new Date(ms).toISOString().replace("T", " ").slice(0, length);
  }

  function formatSpan(ms) {
    let seconds = Math.max(0, Math.ceil(ms / 1000));
    const parts = [];
    for (const [unit, size] of [["d", 86400], ["h", 3600], ["min", 60]]) {
      if (seconds >= size) {
        parts.push(`${Math.floor(seconds / size)} ${unit}`);
        seconds %= size;
      }
    }
    if (seconds || !parts.length) parts.push(`${seconds} s`);
    return parts.join(" ");
  }

  // ------------------------------------------------------------------ the control API

  async function call(method, path, body) {
    const response = await fetch(new URL(path, control), {
      method,
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      throw new Error(data && data.detail ? data.detail : `the mock answered ${response.status}`);
    }
    return data;
  }

  function showProblem(error) {
    const problem = document.getElementById("problem");
    problem.textContent = error ? String(error.message || error) : "";
    problem.hidden = !error;
  }

  // ------------------------------------------------------------------ rendering

  function element(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  function renderClock() {
    const frozen = state.clock.frozen;
    const now = document.getElementById("clock-now");
    now.textContent = `${utcText(simulatedNow())} UTC`;
    now.dateTime = new Date(simulatedNow()).toISOString();
    document.getElementById("clock-mode").textContent = frozen ? "frozen" : "running";
    const freeze = document.getElementById("freeze");
    freeze.textContent = frozen ? "Unfreeze" : "Freeze";
    freeze.setAttribute("aria-label", frozen ? "Unfreeze the clock" : "Freeze the clock");
  }

  function renderDoor(card, intercom) {
    const until = intercom.door.unlocked_until ? Date.parse(intercom.door.unlocked_until) : null;
    const left = until === null ? 0 : until - simulatedNow();
    const open = !intercom.door.locked && left > 0;
    card.door.className = "door " + (open ? "unlocked" : "locked");
    card.door.textContent = open ? `Unlocked · ${formatSpan(left)} left` : "Locked";
  }

  function renderCodeStates(card, intercom) {
    const now = simulatedNow();
    intercom.codes.forEach((code, index) => {
      const row = card.codes.rows[index];
      if (!row) return;
      const expired = code.expired || now > Date.parse(code.expires_at);
      row.classList.toggle("expired", expired);
      row.querySelector(".state").textContent = expired ? "expired" : "valid";
    });
  }

  function describe(event) {
    const detail = event.detail || {};
    switch (event.type) {
      case "access.granted":
        return `access granted · ${detail.kind} · ${detail.detail || detail.reason}`;
      case "access.denied":
        return `access denied · ${detail.kind} · ${detail.reason}${detail.detail ? ` (${detail.detail})` : ""}`;
      case "door.unlocked":
        return `door unlocked by ${detail.by}${detail.until ? ` until ${utcText(Date.parse(detail.until)).slice(11)}` : ""}`;
      case "door.locked":
        return "door locked";
      case "device.online":
        return `device online${detail.synced ? ` (${detail.synced} changes synced)` : ""}`;
      case "device.offline":
        return "device offline";
      default:
        return event.type;
    }
  }

  function newCard(intercom) {
    const root = intercomTemplate.content.firstElementChild.cloneNode(true);
    const find = (selector) => root.querySelector(selector);
    const card = {
      root,
      name: find(".name"),
      ids: find(".ids"),
      owner: find(".owner"),
      door: find(".door"),
      online: find(".online"),
      onlineText: find(".online-text"),
      pending: find(".pending"),
      digits: find(".digits"),
      kind: find(".kind"),
      value: find(".value"),
      decision: find(".decision"),
      codes: find(".codes tbody"),
      more: find(".more"),
      events: find(".events"),
    };
    const id = intercom.id;
    const heading = `intercom-${id}-name`;
    card.name.id = heading;
    root.setAttribute("aria-labelledby", heading);
    const label = intercom.name;
    card.digits.setAttribute("aria-label", `Keypad digits at ${label}`);
    card.online.setAttribute("aria-label", `${label} online`);
    card.kind.setAttribute("aria-label", `Credential kind to present at ${label}`);
    card.value.setAttribute("aria-label", `Credential to present at ${label}`);
    find(".present button").setAttribute("aria-label", `Present the credential at ${label}`);
    find(".enter").setAttribute("aria-label", `Enter the code at ${label}`);
    find(".codes").setAttribute("aria-label", `Codes of ${label}`);
    card.events.setAttribute("aria-label", `Recent events at ${label}`);

    for (const key of root.querySelectorAll("[data-key]")) {
      key.setAttribute("aria-label", `Key ${key.dataset.key}`);
      key.addEventListener("click", () => {
        if (card.digits.value.length < 12) card.digits.value += key.dataset.key;
      });
    }
    find(".clear").addEventListener("click", () => {
      card.digits.value = card.digits.value.slice(0, -1);
    });
    find(".keypad").addEventListener("submit", (event) => {
      event.preventDefault();
      const digits = card.digits.value.trim();
      if (!digits) return;
      card.digits.value = "";
      present(card, id, "keypad", digits);
    });
    find(".present").addEventListener("submit", (event) => {
      event.preventDefault();
      const value = card.value.value.trim();
      if (value) present(card, id, card.kind.value, value);
    });
    card.value.addEventListener("input", () => {
      // A suggested credential brings its kind along.
      const known = credentialKinds.get(card.value.value.trim());
      if (known) card.kind.value = known;
    });
    card.online.addEventListener("change", async () => {
      const wanted = card.online.checked;
      try {
        await call("PUT", `intercoms/${id}/online`, { online: wanted });
      } catch (error) {
        card.online.checked = !wanted;
        showDecision(card, false, `Could not switch the device: ${error.message}`);
      }
    });
    return card;
  }

  function showDecision(card, granted, text) {
    card.decision.className = "decision " + (granted ? "granted" : "denied");
    card.decision.textContent = text;
  }

  async function present(card, id, kind, value) {
    try {
      const decision = await call("POST", `intercoms/${id}/present`, { kind, value });
      const verdict = decision.granted ? "Granted" : "Denied";
      showDecision(card, decision.granted, `${verdict} (${decision.reason}${decision.detail ? `: ${decision.detail}` : ""})`);
    } catch (error) {
      showDecision(card, false, `Not presented: ${error.message}`);
    }
  }

  function renderIntercom(card, intercom) {
    card.name.textContent = intercom.name;
    card.ids.textContent = `VMS ${intercom.id} · Seam ${intercom.uuid}${intercom.address ? ` · ${intercom.address}` : ""}`;
    card.owner.textContent = `${intercom.owner_name} (user ${intercom.owner_user_id})`;
    card.root.classList.toggle("offline", !intercom.online);
    if (document.activeElement !== card.online) card.online.checked = intercom.online;
    card.onlineText.textContent = intercom.online ? "online" : "offline";
    card.pending.hidden = !intercom.pending_sync;
    card.pending.textContent = `${intercom.pending_sync} changes wait for the device to come back online`;
    renderDoor(card, intercom);

    card.codes.replaceChildren(
      ...intercom.codes.map((code) => {
        const row = element("tr");
        const digits = element("td");
        digits.append(element("code", code.code));
        row.append(digits, element("td", code.name), element("td", utcText(Date.parse(code.expires_at), 16)));
        row.append(element("td", "", "state"));
        return row;
      }),
    );
    renderCodeStates(card, intercom);
    const hidden = intercom.codes_total - intercom.codes.length;
    card.more.textContent = intercom.codes_total === 0 ? "No codes." : hidden > 0 ? `and ${hidden} older codes` : "";

    card.events.replaceChildren(
      ...intercom.events
        .slice()
        .reverse()
        .map((event) => {
          const item = element("li", "", event.type.endsWith("granted") ? "granted" : event.type.endsWith("denied") ? "denied" : "");
          const at = element("time", utcText(Date.parse(event.at)).slice(5));
          at.dateTime = event.at;
          item.append(at, " ", describe(event));
          return item;
        }),
    );
    if (!intercom.events.length) card.events.replaceChildren(element("li", "No events yet."));
  }

  const credentialKinds = new Map(); // credential value -> kind, for the present forms' suggestions

  function renderCustomers() {
    const body = document.querySelector("#customers tbody");
    const list = document.getElementById("credentials");
    credentialKinds.clear();
    const options = [];
    body.replaceChildren(
      ...state.customers.map((customer) => {
        const row = element("tr");
        const credentials = element("td");
        for (const credential of customer.credentials) {
          const expiry = credential.expires_at ? `, until ${utcText(Date.parse(credential.expires_at))} UTC` : "";
          const value = element("code", credential.value);
          value.title = `${credential.kind}${expiry}`;
          credentials.append(`${credential.kind} `, value, " ");
          credentialKinds.set(credential.value, credential.kind);
          const option = element("option");
          option.value = credential.value;
          option.label = `${customer.name} · ${credential.kind}${expiry}`;
          options.push(option);
        }
        if (!customer.credentials.length) credentials.textContent = "none";
        row.append(element("td", customer.name), element("td", customer.studio), element("td", customer.status), credentials);
        return row;
      }),
    );
    list.replaceChildren(...options);
    const hidden = state.customers_total - state.customers.length;
    document.getElementById("customers-more").textContent = hidden > 0 ? `and ${hidden} more customers` : "";
  }

  function render() {
    renderClock();
    const container = document.getElementById("intercoms");
    const seen = new Set();
    state.intercoms.forEach((intercom, index) => {
      seen.add(intercom.id);
      let card = cards.get(intercom.id);
      if (!card) {
        card = newCard(intercom);
        cards.set(intercom.id, card);
      }
      // In the state's order, moving a card only when it is out of place: a moved card loses the focus.
      if (container.children[index] !== card.root) container.insertBefore(card.root, container.children[index] || null);
      renderIntercom(card, intercom);
    });
    for (const [id, card] of cards) {
      if (!seen.has(id)) {
        card.root.remove();
        cards.delete(id);
      }
    }
    renderCustomers();
  }

  function tick() {
    // A running clock moves between messages: the clock, the doors' time left and the codes' expiry follow it.
    if (!state || state.clock.frozen) return;
    renderClock();
    for (const intercom of state.intercoms) {
      const card = cards.get(intercom.id);
      if (card) {
        renderDoor(card, intercom);
        renderCodeStates(card, intercom);
      }
    }
  }

  // ------------------------------------------------------------------ the push channel

  function setConnection(text, live) {
    const connection = document.getElementById("connection");
    connection.textContent = text;
    connection.classList.toggle("live", live);
  }

  function connect() {
    const url = new URL("panel/live", control);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(url);
    socket.addEventListener("open", () => {
      retryDelay = 250;
      setConnection("live", true);
    });
    socket.addEventListener("message", (message) => {
      const data = JSON.parse(message.data);
      if (data.type !== "state") return;
      state = data.state;
      receivedAt = performance.now();
      render();
    });
    socket.addEventListener("close", () => {
      setConnection("reconnecting…", false);
      setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 5000);
    });
  }

  // ------------------------------------------------------------------ the clock's buttons

  for (const button of document.querySelectorAll("[data-advance]")) {
    button.addEventListener("click", () =>
      call("POST", "clock/advance", { seconds: Number(button.dataset.advance) }).then(() => showProblem(null), showProblem),
    );
  }
  document.getElementById("freeze").addEventListener("click", () => {
    if (state) call("PUT", "clock", { frozen: !state.clock.frozen }).then(() => showProblem(null), showProblem);
  });

  setInterval(tick, 250);
  connect();
})();
