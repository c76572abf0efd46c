// The settlement chart (ECharts, vendored): <div data-settlement-chart='{"labels": [...], "values": [...],
// "texts": [...]}'> is drawn from its JSON, so the page needs no inline script (CSP). One horizontal bar
// per branch: its net for the month in minor units, green when HQ pays the branch, red when the branch
// pays HQ. The amounts on the bars are the page's own (server-formatted, in the chain's currency); the
// value axis shows no numbers, so nothing here formats money. No HTML tooltip: ECharts' tooltip writes
// inline styles, which the Content-Security-Policy refuses; the element's aria-label says it in words.
"use strict";

(function () {
  var RECEIVES = "#16a34a";
  var PAYS = "#dc2626";

  function option(spec) {
    // a symmetric axis with room beyond the longest bar on both sides, so the amounts written at the
    // bars' ends never run into the branch names
    var widest = Math.max.apply(null, spec.values.map(Math.abs).concat([1]));
    return {
      animation: false,
      textStyle: { fontSize: 13 },
      grid: { left: 8, right: 8, top: 8, bottom: 8, containLabel: true },
      xAxis: { type: "value", min: -widest * 1.35, max: widest * 1.35, axisLabel: { show: false }, splitLine: { show: false } },
      yAxis: { type: "category", data: spec.labels, inverse: true, axisTick: { show: false }, axisLabel: { fontSize: 13 } },
      series: [{
        type: "bar",
        barMaxWidth: 28,
        data: spec.values.map(function (value, i) {
          return {
            value: value,
            itemStyle: { color: value < 0 ? PAYS : RECEIVES },
            label: { show: true, position: value < 0 ? "left" : "right", formatter: spec.texts[i], fontSize: 13 },
          };
        }),
      }],
    };
  }

  function draw(element) {
    if (element.getAttribute("data-drawn") || !window.echarts) {
      return;
    }
    var chart = window.echarts.init(element, null, { renderer: "canvas" });
    chart.setOption(option(JSON.parse(element.getAttribute("data-settlement-chart"))));
    element.setAttribute("data-drawn", "true");
    window.addEventListener("resize", function () { chart.resize(); });
  }

  function drawAll() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-settlement-chart]"), draw);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
