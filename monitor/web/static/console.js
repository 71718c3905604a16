// monitor console: the little JavaScript the pages use (vendored, no CDN; every form also
// works without it). Live preview: an element with data-preview="URL" data-target="#id" sends
// its form's fields (query, days, the edited rule's original name) as a GET to URL, debounced,
// and swaps the HTML answer into the target.
// "Why?" links (data-explain) load their explanation into #explain instead of navigating.
(function () {
  "use strict";
  var timers = new WeakMap();
  var inflight = new WeakMap();

  function swap(target, url) {
    var prev = inflight.get(target);
    if (prev) { prev.abort(); }
    var ctl = new AbortController();
    inflight.set(target, ctl);
    target.setAttribute("aria-busy", "true");
    return fetch(url, { headers: { "X-Requested-With": "fetch" }, credentials: "same-origin", signal: ctl.signal })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        target.innerHTML = html;
        target.removeAttribute("aria-busy");
        target.dispatchEvent(new CustomEvent("swapped", { bubbles: true }));
      })
      .catch(function (err) { if (err.name !== "AbortError") { target.removeAttribute("aria-busy"); } });
  }

  function previewUrl(el) {
    var form = el.form;
    var params = new URLSearchParams();
    ["query", "days", "original"].forEach(function (name) {
      var field = form && form.elements[name] ? form.elements[name] : document.querySelector("[name=" + name + "]");
      if (field) { params.set(name, field.value); }
    });
    return el.getAttribute("data-preview") + "?" + params.toString();
  }

  function schedule(el, delay) {
    var target = document.querySelector(el.getAttribute("data-target"));
    if (!target) { return; }
    clearTimeout(timers.get(el));
    timers.set(el, setTimeout(function () { swap(target, previewUrl(el)); }, delay));
  }

  document.addEventListener("input", function (ev) {
    var el = ev.target;
    if (el.hasAttribute && el.hasAttribute("data-preview")) { schedule(el, 400); }
  });
  document.addEventListener("change", function (ev) {
    var el = ev.target;
    if (el.tagName === "SELECT" && el.hasAttribute("data-preview")) { schedule(el, 0); }
  });
  document.addEventListener("click", function (ev) {
    var link = ev.target.closest ? ev.target.closest("a[data-explain]") : null;
    if (!link) { return; }
    var target = document.getElementById("explain");
    if (!target) { return; }
    ev.preventDefault();
    var q = document.getElementById("rule-query");
    var original = document.querySelector("[name=original]");  // the rule edited: its examples apply
    var url = "/rules/explain?article=" + encodeURIComponent(link.getAttribute("data-explain")) +
      "&query=" + encodeURIComponent(q ? q.value : "") +
      (original && original.value ? "&original=" + encodeURIComponent(original.value) : "");
    swap(target, url).then(function () { target.scrollIntoView({ block: "nearest" }); target.focus && target.focus(); });
  });
})();
