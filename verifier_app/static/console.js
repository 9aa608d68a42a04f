/* callproof agent console: keeps the call page up to date without a reload.
 * Polls the same-origin status.json every 2 s and updates the state text, the check word and
 * the alerts in the page's aria-live region. Without JavaScript the Refresh button does the same.
 */
(function () {
  "use strict";
  // The dialer may open the console as /console/#customer=C-1001&phone=%2B886912345678: the
  // fragment fills the form and never reaches the server or its logs. The agent still submits.
  function fromDialer() {
    if (!document.getElementById("customer") || window.location.hash.length < 2 ||
        !window.URLSearchParams) { return; }
    var given = new URLSearchParams(window.location.hash.slice(1));
    ["customer", "phone"].forEach(function (name) {
      var box = document.getElementById(name);
      var value = given.get(name);
      if (box && value) { box.value = value.slice(0, box.maxLength > 0 ? box.maxLength : 256); }
    });
    history.replaceState(null, "", window.location.pathname + window.location.search);
  }
  fromDialer();
  window.addEventListener("hashchange", fromDialer);  // the dialer reuses an open console tab
  var poll = document.getElementById("console-poll");
  if (!poll || !window.fetch || poll.getAttribute("data-final") === "true") { return; }
  var url = poll.getAttribute("data-url");
  var EVERY = 2000;

  function byId(id) { return document.getElementById(id); }
  function setText(el, text) { if (el && el.textContent !== text) { el.textContent = text; } }
  function show(el, on) { if (el && el.hidden === on) { el.hidden = !on; } }
  function note(text) { var el = byId("poll-note"); setText(el, text || ""); show(el, !!text); }

  function render(s) {
    var box = byId("call-status");
    if (box && box.getAttribute("data-state") !== s.state) {
      box.setAttribute("data-state", s.state);
      box.className = box.className.replace(/\bstate-\S+/, "state-" + s.state);
    }
    setText(byId("state-text"), s.message);
    var word = s.check_word;
    if (word) {
      setText(byId("word-emoji"), word.emoji);
      setText(byId("word-text"), word.text);
      if (byId("word-text")) { byId("word-text").setAttribute("lang", word.lang); }
      setText(byId("word-language"), word.language);
      setText(byId("word-others"), word.others.length ?
        poll.getAttribute("data-label-others") + " " + word.others.join(" · ") : "");
    }
    show(byId("check-word"), !!word);
    var list = byId("alert-list");
    var texts = s.alerts.map(function (a) { return a.text; });
    var shown = Array.prototype.map.call(list ? list.children : [], function (li) {
      return li.textContent;
    });
    if (list && texts.join("\n") !== shown.join("\n")) {
      while (list.firstChild) { list.removeChild(list.firstChild); }
      texts.forEach(function (t) {
        var li = document.createElement("li");
        li.textContent = t;
        list.appendChild(li);
      });
    }
    show(byId("alerts"), texts.length > 0);
    show(byId("code-block"), s.show_code);
    show(byId("script-line"), s.show_code);
    show(byId("reveal-form"), s.reveal === "ready");
    show(byId("reveal-waiting"), s.reveal === "waiting");
    var close = byId("close-button");
    if (close && close.form) { show(close.form, s.can_close); }
  }

  function tick() {
    fetch(url, { credentials: "same-origin", cache: "no-store",
                 headers: { "Accept": "application/json" } })
      .then(function (r) {
        if (r.status === 401) {
          note(poll.getAttribute("data-label-signed-out"));
          return null;  // stop: signing in again starts a fresh page
        }
        if (r.status === 404) { return null; }
        if (!r.ok) { throw new Error("status " + r.status); }
        return r.json().then(function (s) {
          note("");
          render(s);
          if (!s.final) { window.setTimeout(tick, EVERY); }
        });
      })
      .catch(function () {
        note(poll.getAttribute("data-label-offline"));
        window.setTimeout(tick, EVERY * 2);
      });
  }

  window.setTimeout(tick, EVERY);
}());
