// Live updates without reloading the page: every 2 s, fetch the list's fragment for the
// same filters and page and swap it in when it changed (the filter inputs keep focus).
(function () {
  "use strict";
  var box = document.getElementById("messages");
  if (!box) { return; }
  var last = box.innerHTML;
  function refresh() {
    var url = box.getAttribute("data-fragment");
    fetch(url, { headers: { "Accept": "text/html" }, cache: "no-store" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html !== null && html !== last) {
          box.innerHTML = html;
          last = html;
        }
      })
      .catch(function () { /* the sink restarted: try again next time */ });
  }
  setInterval(refresh, 2000);
  var clear = document.getElementById("clear-all");
  if (clear) {
    clear.addEventListener("submit", function (event) {
      if (!window.confirm("Delete every message in the sink?")) { event.preventDefault(); }
    });
  }
})();
