// Live updates for a page that declares data-version-url (and data-seq, the last journal entry
// it shows): when the instance changes, the page's main part is fetched again (the same address,
// so a notice it shows stays) and swapped in, keeping open <details> open and what was typed
// into its forms.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !live.dataset.versionUrl) { return; }
  var busy = false;

  function openDetails(root) {
    var open = [];
    root.querySelectorAll("details").forEach(function (d, i) { if (d.open) { open.push(i); } });
    return open;
  }

  function typed(root) {
    var values = {};
    root.querySelectorAll("input[id], select[id]").forEach(function (field) { values[field.id] = field.value; });
    return values;
  }

  function redraw() {
    var keep = openDetails(live);
    var values = typed(live);
    return fetch(window.location.pathname + window.location.search, { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (!html) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("live");
        if (!fresh) { return; }
        live.innerHTML = fresh.innerHTML;
        live.dataset.version = fresh.dataset.version;
        live.dataset.seq = fresh.dataset.seq;
        var all = live.querySelectorAll("details");
        keep.forEach(function (i) { if (all[i]) { all[i].open = true; } });
        Object.keys(values).forEach(function (id) {
          var field = document.getElementById(id);
          if (field && live.contains(field)) { field.value = values[id]; }
        });
      });
  }

  function look() {
    if (busy || document.hidden) { return; }
    busy = true;
    fetch(live.dataset.versionUrl + "?seq=" + encodeURIComponent(live.dataset.seq || "0"), { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (data && data.version !== live.dataset.version) { return redraw(); }
      })
      .catch(function () { /* the dashboard restarting: look again later */ })
      .then(function () { busy = false; });
  }

  window.setInterval(look, 500);
})();
