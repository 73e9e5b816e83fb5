// Keeps every terminal presence fragment (data-presence-url) up to date: fetches its JSON every
// few seconds and fills the [data-field] elements. All wording comes translated from the server.
(function () {
  "use strict";
  var PERIOD_MS = 3000;
  function refresh(box) {
    fetch(box.dataset.presenceUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        box.querySelectorAll("[data-field]").forEach(function (el) {
          var value = data[el.dataset.field];
          el.textContent = value === "" || value === null || value === undefined ? "-" : value;
        });
        var state = box.querySelector('[data-field="state_label"]');
        var card = box.querySelector('[data-field="card_label"]');
        if (state) { state.className = "badge " + (data.state === "online" ? "badge-ok" : "badge-warn"); }
        if (card) { card.className = "badge " + (data.card_present ? "badge-ok" : "badge-warn"); }
        box.dataset.state = data.state;
      })
      .catch(function () { /* offline for a moment: try again at the next tick */ });
  }
  function start() {
    document.querySelectorAll("[data-presence-url]").forEach(function (box) {
      if (box.dataset.presenceStarted) { return; }
      box.dataset.presenceStarted = "1";
      refresh(box);
      setInterval(function () { refresh(box); }, PERIOD_MS);
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
