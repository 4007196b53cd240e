/* Records script errors (and failed resources) on <html data-errors>; runs first. */
(function () {
  var errors = [];
  function record(text) { errors.push(String(text)); document.documentElement.setAttribute("data-errors", errors.join(" | ")); }
  window.onerror = function (message, source, line) { record(message + " (" + (source || "inline") + ":" + line + ")"); };
  window.addEventListener("error", function (e) {
    if (e.target && e.target !== window) { record("failed to load " + (e.target.src || e.target.href || e.target.tagName)); }
  }, true);
  window.addEventListener("unhandledrejection", function (e) { record("unhandled rejection: " + e.reason); });
})();
