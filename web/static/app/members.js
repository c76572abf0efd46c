// Charts of the member pages (ECharts, vendored): each <div class="chart" data-chart='{"kind": "bar"|"pie",
// "labels": [...], "values": [...]}'> is drawn from its JSON, so the page needs no inline script (CSP).
// Labels are drawn on the chart itself (no HTML tooltip: ECharts' tooltip writes inline styles, which
// the Content-Security-Policy refuses); the element's aria-label says the same in words.
"use strict";

(function () {
  var COLORS = ["#2563eb", "#16a34a", "#d97706", "#6b7280", "#9333ea", "#0891b2", "#dc2626"];

  function option(spec) {
    if (spec.kind === "pie") {
      return {
        color: COLORS,
        animation: false,
        series: [{
          type: "pie",
          radius: ["35%", "65%"],
          label: { formatter: "{b}: {c}" },
          data: spec.labels.map(function (label, i) { return { name: label, value: spec.values[i] }; }),
        }],
      };
    }
    return {
      color: COLORS,
      animation: false,
      grid: { left: 8, right: 32, top: 8, bottom: 8, containLabel: true },
      xAxis: { type: "value", minInterval: 1 },
      yAxis: { type: "category", data: spec.labels, inverse: true },
      series: [{
        type: "bar",
        data: spec.values.map(function (value, i) { return { value: value, itemStyle: { color: COLORS[i % COLORS.length] } }; }),
        label: { show: true, position: "right" },
      }],
    };
  }

  function draw(element) {
    if (element.getAttribute("data-drawn") || !window.echarts) {
      return;
    }
    var chart = window.echarts.init(element, null, { renderer: "canvas" });
    chart.setOption(option(JSON.parse(element.getAttribute("data-chart"))));
    element.setAttribute("data-drawn", "true");
    window.addEventListener("resize", function () { chart.resize(); });
  }

  function drawAll(root) {
    Array.prototype.forEach.call(root.querySelectorAll("[data-chart]"), draw);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  } else {
    drawAll(document);
  }
  document.addEventListener("htmx:afterSettle", function (event) { drawAll(event.target); });
})();
