// Live progress of a card job: polls the job's JSON status and updates the page without
// reloading; reloads once when the job ends so the result is shown. No inline script (CSP).
(function () {
  "use strict";
  var root = document.getElementById("job");
  if (!root || root.dataset.active !== "1") { return; }
  var url = root.dataset.statusUrl;
  function render(status) {
    document.getElementById("job-state").textContent = status.state_label;
    document.getElementById("job-step").textContent = status.step || "";
    var list = document.getElementById("job-steps");
    while (list.firstChild) { list.removeChild(list.firstChild); }
    status.steps.forEach(function (s) {
      var li = document.createElement("li");
      li.textContent = s.step + ": " + s.command + " " + s.sw;
      list.appendChild(li);
    });
  }
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (status) {
        render(status);
        if (status.active) { window.setTimeout(poll, 700); } else { window.location.reload(); }
      })
      .catch(function () { window.setTimeout(poll, 2000); });
  }
  window.setTimeout(poll, 300);
})();
