/* wafleet console: the QR code countdown. The only script besides htmx (the pages'
   Content-Security-Policy allows no inline script). The server's clock, given once per
   page in <body data-server-now>, corrects a browser clock that is off. */
(function () {
  "use strict";
  var offset = 0; // server time minus browser time, in ms

  function readOffset() {
    var serverNow = Date.parse(document.body.getAttribute("data-server-now") || "");
    if (!isNaN(serverNow)) {
      offset = serverNow - Date.now();
    }
  }

  function tick() {
    var now = Date.now() + offset;
    var items = document.querySelectorAll("[data-expires]");
    for (var i = 0; i < items.length; i++) {
      var el = items[i];
      var expires = Date.parse(el.getAttribute("data-expires"));
      if (isNaN(expires)) {
        continue;
      }
      var left = Math.max(0, Math.ceil((expires - now) / 1000));
      el.textContent = left > 0
        ? "Expires in " + left + " s"
        : "Expired: a new code is on its way";
      el.classList.toggle("expired", left === 0);
      el.classList.toggle("soon", left > 0 && left <= 10);
    }
  }

  function start() {
    readOffset();
    tick();
    window.setInterval(tick, 1000);
    document.body.addEventListener("htmx:afterSwap", tick);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
