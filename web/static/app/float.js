// The stored-value float trend (ECharts, vendored): <div data-float-chart='{"labels": [...],
// "principal": [...], "bonus": [...], "texts": [...], "names": [...]}'> is drawn from its JSON (no inline
// script: CSP). One stacked bar per month: principal and bonus members held at the month's end, in minor
// units; the total over each bar is the page's own server-formatted amount, so nothing here formats money.
"use strict";

(function () {
  var PRINCIPAL = "#2563eb";
  var BONUS = "#f59e0b";

  function option(spec) {
    return {
      animation: false,
      textStyle: { fontSize: 13 },
      grid: { left: 8, right: 8, top: 24, bottom: 8, containLabel: true },
      xAxis: { type: "category", data: spec.labels, axisTick: { show: false } },
      yAxis: { type: "value", axisLabel: { show: false }, splitLine: { show: false } },
      series: [
        { name: spec.names[0], type: "bar", stack: "float", barMaxWidth: 36, itemStyle: { color: PRINCIPAL }, data: spec.principal },
        {
          name: spec.names[1], type: "bar", stack: "float", barMaxWidth: 36, itemStyle: { color: BONUS },
          data: spec.bonus.map(function (value, i) {
            return { value: value, label: { show: true, position: "top", formatter: spec.texts[i], fontSize: 12 } };
          }),
        },
      ],
    };
  }

  function draw(element) {
    if (element.getAttribute("data-drawn") || !window.echarts) {
      return;
    }
    var chart = window.echarts.init(element, null, { renderer: "canvas" });
    chart.setOption(option(JSON.parse(element.getAttribute("data-float-chart"))));
    element.setAttribute("data-drawn", "true");
    window.addEventListener("resize", function () { chart.resize(); });
  }

  function drawAll() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-float-chart]"), draw);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
