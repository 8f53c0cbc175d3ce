// Live boot timeline: polls the events API every 2 s and appends new rows. Builds the DOM with
// textContent only, so nothing a machine sent can become markup.
(function () {
  "use strict";
  var body = document.getElementById("timeline");
  if (!body) { return; }
  var url = body.getAttribute("data-url");
  var systemUrl = body.getAttribute("data-system-url");
  var lastId = parseInt(body.getAttribute("data-last-id") || "0", 10) || 0;
  var empty = document.getElementById("timeline-empty");
  var live = document.getElementById("live");
  var state = document.getElementById("state");
  var stale = document.getElementById("stale");
  var initialState = state ? state.textContent : null;
  var failures = 0;

  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function when(t) {
    var d = new Date(t * 1000);
    return d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) + " " +
      pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + ":" + pad(d.getUTCSeconds()) + " UTC";
  }
  function cell(label, text) {
    var td = document.createElement("td");
    td.setAttribute("data-label", label);
    if (text !== undefined) { td.textContent = text; }
    return td;
  }
  function add(e) {
    var tr = document.createElement("tr");
    tr.className = "new phase-" + String(e.phase).replace(/[^a-z0-9-]/gi, "");
    tr.appendChild(cell("Time", when(e.time)));
    var phase = cell("Phase");
    var badge = document.createElement("span");
    badge.className = "badge phase";
    badge.textContent = e.phase;
    phase.appendChild(badge);
    tr.appendChild(phase);
    var what = cell("What", e.summary);
    var file = e.detail && e.detail.file;
    if (file && String(e.summary).indexOf(String(file)) < 0) {
      var code = document.createElement("code");
      code.textContent = String(file);
      what.appendChild(document.createTextNode(" "));
      what.appendChild(code);
    }
    tr.appendChild(what);
    tr.appendChild(cell("Client IP", e.client_ip || "-"));
    body.appendChild(tr);
  }
  function getJson(u) {
    return fetch(u, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); });
  }
  function poll() {
    getJson(url + "?since_id=" + lastId).then(function (data) {
      failures = 0;
      if (live) { live.hidden = false; }
      (data.events || []).forEach(add);
      if (data.events && data.events.length) {
        lastId = data.last_id;
        if (empty) { empty.hidden = true; }
        return getJson(systemUrl).then(function (s) {
          if (state && s.state) {
            state.textContent = s.state;
            state.className = "badge state-" + s.state.replace(/[^a-z]/g, "");
            if (stale && s.state !== initialState) { stale.hidden = false; }
          }
        });
      }
    }).catch(function () {
      failures += 1;
      if (live) { live.hidden = true; }
    }).then(function () {
      setTimeout(poll, failures ? Math.min(30000, 2000 * Math.pow(2, failures)) : 2000);
    });
  }
  setTimeout(poll, 1000);
}());
