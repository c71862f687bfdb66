// The live decision feed (/console/live): a WebSocket to /console/ws/live, rows built
// with textContent only (every string comes from a device), newest first, at most
// data-cap rows. The filter is applied by the server: it is sent on every change (and
// kept in the URL, so a reload keeps it). Reconnects with backoff.
"use strict";

(function () {
  const table = document.getElementById("feed");
  const form = document.getElementById("feed-filter");
  const status = document.getElementById("feed-status");
  const skippedLine = document.getElementById("feed-skipped");
  const pauseButton = document.getElementById("feed-pause");
  if (!table || !form || !status) {
    return;
  }
  const body = table.tBodies[0];
  const cap = parseInt(table.dataset.cap || "500", 10) || 500;
  const KEYS = ["user", "device", "resource", "effect"];

  let socket = null;
  let backoff = 1;
  let retryTimer = null;
  let paused = false;
  let held = []; // items received while paused (newest last), capped like the table
  let skipped = 0;
  let skipTimer = null;

  function currentFilter() {
    const filter = { type: "filter" };
    for (const key of KEYS) {
      const field = form.elements.namedItem(key);
      filter[key] = field ? String(field.value || "").trim() : "";
    }
    return filter;
  }

  function setStatus(text) {
    status.textContent = text;
    status.dataset.state = text === "live" ? "live" : "down";
  }

  function socketUrl() {
    const url = new URL(table.dataset.ws || "/console/ws/live", window.location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const filter = currentFilter();
    for (const key of KEYS) {
      if (filter[key]) {
        url.searchParams.set(key, filter[key]);
      }
    }
    return url.toString();
  }

  function cell(row, text, className) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "" : String(text);
    if (className) {
      td.className = className;
    }
    row.appendChild(td);
    return td;
  }

  function timeText(seconds) {
    const when = new Date(Number(seconds) * 1000);
    return isNaN(when.getTime()) ? "" : when.toLocaleTimeString();
  }

  function buildRow(item) {
    const row = document.createElement("tr");
    const effect = String(item.effect || "");
    row.dataset.effect = effect;
    row.dataset.user = String(item.user || "");
    row.dataset.device = String(item.device || "");
    row.dataset.resource = String(item.resource || "");
    row.dataset.id = String(item.id || "");
    row.dataset.replica = String(item.replica || "");
    row.className = effect === "deny" ? "deny" : "allow";
    cell(row, timeText(item.at));
    cell(row, effect, "effect");
    cell(row, item.user);
    const device = cell(row, item.device_name || item.device);
    device.title = String(item.device || "");
    cell(row, item.app);
    const port = Number(item.port) > 0 ? ":" + String(item.port) : "";
    const dest = cell(row, String(item.host || item.ip || "") + port);
    if (item.ip && item.ip !== item.host) {
      dest.title = String(item.ip);
    }
    cell(row, item.resource);
    cell(row, item.rule);
    const reason = cell(row, item.reason);
    if (item.code) {
      reason.title = String(item.code);
    }
    cell(row, Number(item.count) > 1 ? String(item.risk) + " (×" + String(item.count) + ")" : item.risk);
    return row;
  }

  function show(items) {
    // Items arrive oldest first; the newest goes on top.
    const fragment = document.createDocumentFragment();
    for (let i = items.length - 1; i >= 0; i -= 1) {
      fragment.appendChild(buildRow(items[i]));
    }
    body.insertBefore(fragment, body.firstChild);
    while (body.rows.length > cap) {
      body.deleteRow(body.rows.length - 1);
    }
  }

  function showSkipped() {
    if (skippedLine) {
      skippedLine.textContent = skipped > 0 ? String(skipped) + " not shown (rate limit)" : "";
    }
  }

  function onMessage(event) {
    let message;
    try {
      message = JSON.parse(event.data);
    } catch (err) {
      return;
    }
    if (!message || typeof message !== "object") {
      return;
    }
    if (message.type === "decisions" && Array.isArray(message.items)) {
      if (paused) {
        held = held.concat(message.items).slice(-cap);
      } else {
        show(message.items);
      }
    } else if (message.type === "skipped") {
      const count = Number(message.count) || 0;
      skipped += count;
      showSkipped();
      // Said for a few seconds, then back to "live" while the socket is open.
      setStatus(String(count) + " not shown (rate limit)");
      if (skipTimer !== null) {
        window.clearTimeout(skipTimer);
      }
      skipTimer = window.setTimeout(function () {
        skipTimer = null;
        if (socket && socket.readyState === WebSocket.OPEN) {
          setStatus("live");
        }
      }, 3000);
    }
  }

  function scheduleReconnect() {
    if (retryTimer !== null) {
      return;
    }
    let left = backoff;
    setStatus("reconnecting in " + String(left) + "s");
    retryTimer = window.setInterval(function () {
      left -= 1;
      if (left <= 0) {
        window.clearInterval(retryTimer);
        retryTimer = null;
        connect();
      } else {
        setStatus("reconnecting in " + String(left) + "s");
      }
    }, 1000);
    backoff = Math.min(backoff * 2, 30);
  }

  function connect() {
    setStatus("connecting…");
    let ws;
    try {
      ws = new WebSocket(socketUrl());
    } catch (err) {
      scheduleReconnect();
      return;
    }
    socket = ws;
    ws.addEventListener("open", function () {
      if (socket === ws) {
        backoff = 1;
        setStatus("live");
      }
    });
    ws.addEventListener("message", function (event) {
      if (socket === ws) {
        onMessage(event);
      }
    });
    ws.addEventListener("close", function () {
      if (socket !== ws) {
        return;
      }
      socket = null;
      scheduleReconnect();
    });
  }

  function sendFilter() {
    const filter = currentFilter();
    const url = new URL(window.location.href);
    for (const key of KEYS) {
      if (filter[key]) {
        url.searchParams.set(key, filter[key]);
      } else {
        url.searchParams.delete(key);
      }
    }
    window.history.replaceState(null, "", url.toString());
    // What is on screen may not match the new filter: start afresh.
    while (body.rows.length > 0) {
      body.deleteRow(0);
    }
    held = [];
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify(filter));
    }
  }

  let debounce = null;
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    sendFilter();
  });
  form.addEventListener("input", function () {
    if (debounce !== null) {
      window.clearTimeout(debounce);
    }
    debounce = window.setTimeout(function () {
      debounce = null;
      sendFilter();
    }, 300);
  });
  form.addEventListener("change", function () {
    if (debounce !== null) {
      window.clearTimeout(debounce);
      debounce = null;
    }
    sendFilter();
  });
  if (pauseButton) {
    pauseButton.addEventListener("click", function () {
      paused = !paused;
      pauseButton.setAttribute("aria-pressed", paused ? "true" : "false");
      pauseButton.textContent = paused ? "Resume" : "Pause";
      if (!paused && held.length > 0) {
        show(held);
        held = [];
      }
    });
  }
  // Rows rendered by the server (recent decisions): their times in local time too.
  for (const stamp of body.querySelectorAll("time[data-at]")) {
    stamp.textContent = timeText(stamp.dataset.at);
  }
  connect();
})();
