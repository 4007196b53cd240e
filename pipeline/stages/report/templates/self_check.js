/* Checks that every chart (svg[data-plot]) drew its series (a .mark with a non-empty bounding box)
   and that no script failed; sets <body data-ok data-problems data-plots> for the browser test. */
(function () {
  var problems = [], plots = document.querySelectorAll("svg[data-plot]");
  if (!plots.length) { problems.push("no charts"); }
  plots.forEach(function (svg) {
    var drawn = 0, want = parseInt(svg.getAttribute("data-series") || "1", 10);
    svg.querySelectorAll(".mark").forEach(function (m) { var b = m.getBBox(); if (b.width > 0 || b.height > 0) { drawn++; } });
    if (drawn < want) { problems.push(svg.getAttribute("data-plot") + ": " + drawn + " of " + want + " series drawn"); }
  });
  var errors = document.documentElement.getAttribute("data-errors");
  if (errors) { problems.push("script errors: " + errors); }
  document.body.setAttribute("data-plots", String(plots.length));
  document.body.setAttribute("data-problems", problems.join("; "));
  document.body.setAttribute("data-ok", problems.length ? "false" : "true");
})();
