/* callproof fraud desk: new alerts appear without a reload, and the police page gets a Print
 * button. Polls the same-origin alerts.json every 3 s for alerts newer than the newest shown,
 * adds them at the top of the table and announces them in the page's aria-live region.
 * Without JavaScript the Refresh button does the same.
 */
(function () {
  "use strict";

  function byId(id) { return document.getElementById(id); }

  var printButton = byId("print-button");
  if (printButton && window.print) {
    printButton.hidden = false;
    printButton.addEventListener("click", function () { window.print(); });
  }

  var poll = byId("desk-poll");
  if (!poll || !window.fetch) { return; }
  var url = poll.getAttribute("data-url");
  var after = poll.getAttribute("data-after");
  var EVERY = parseInt(poll.getAttribute("data-every"), 10) || 3000;
  var MAX = parseInt(poll.getAttribute("data-max"), 10) || 50;

  function setText(el, text) { if (el && el.textContent !== text) { el.textContent = text; } }
  function note(text) {
    var el = byId("poll-note");
    setText(el, text || "");
    if (el) { el.hidden = !text; }
  }

  // The columns' names: on a phone each row is a card, and a value from the third column on
  // is led by its column's name (style.css draws a cell's data-label), as the page's rows are.
  var heads = Array.prototype.map.call(
    document.querySelectorAll("#alert-table thead th"), function (th) { return th.textContent; });

  function cell(row, text, className) {
    var td = document.createElement("td");
    if (className) { td.className = className; }
    if (row.cells.length >= 2 && heads[row.cells.length]) {
      td.setAttribute("data-label", heads[row.cells.length]);
    }
    td.textContent = text || "–";
    row.appendChild(td);
    return td;
  }

  function addRow(a, before) {
    var rows = byId("alert-rows");
    var tr = document.createElement("tr");
    tr.className = "kind-" + a.kind + " desk-new";
    tr.setAttribute("data-idx", String(a.idx));
    var td = document.createElement("td");
    var time = document.createElement("time");
    time.setAttribute("datetime", a.at);
    time.textContent = a.at_text;
    td.appendChild(time);
    tr.appendChild(td);
    var kind = cell(tr, "", "desk-kind");
    var link = document.createElement("a");
    link.href = a.url;
    link.textContent = a.kind_text;
    kind.textContent = "";
    kind.appendChild(link);
    cell(tr, a.ticket_id, "desk-id");
    cell(tr, a.agent_id, "desk-id");
    cell(tr, a.reason_text, "");
    cell(tr, a.details_text, "");
    cell(tr, a.work_text, "desk-work");
    rows.insertBefore(tr, before);
  }

  function render(data) {
    var rows = byId("alert-rows");
    if (!rows || !data.alerts.length) { return; }
    var first = rows.firstChild;
    // data.alerts is newest first: keep that order above the rows already shown.
    data.alerts.forEach(function (a) {
      if (!rows.querySelector("tr[data-idx='" + a.idx + "']")) { addRow(a, first); }
    });
    var all = rows.getElementsByTagName("tr");
    while (all.length > MAX) { rows.removeChild(all[all.length - 1]); }
    var empty = byId("no-alerts");
    if (empty) { empty.hidden = true; }
    setText(byId("desk-live"), data.announcement);
  }

  function target() {
    if (after === null || after === "") { return url; }
    return url + (url.indexOf("?") < 0 ? "?" : "&") + "after=" + encodeURIComponent(after);
  }

  function tick() {
    fetch(target(), { credentials: "same-origin", cache: "no-store",
                      headers: { "Accept": "application/json" } })
      .then(function (r) {
        if (r.status === 401) {
          note(poll.getAttribute("data-label-signed-out"));
          return null;  // stop: signing in again starts a fresh page
        }
        if (!r.ok) { throw new Error("status " + r.status); }
        return r.json().then(function (data) {
          note("");
          render(data);
          if (data.last !== null && data.last !== undefined) { after = String(data.last); }
          window.setTimeout(tick, EVERY);
        });
      })
      .catch(function () {
        note(poll.getAttribute("data-label-offline"));
        window.setTimeout(tick, EVERY * 2);
      });
  }

  window.setTimeout(tick, EVERY);
}());
