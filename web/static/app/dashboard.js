// The dashboards' charts (ECharts, vendored): each <div data-dash-chart='{"kind": "line"|"bar"|"hbar"|"pie",
// "labels": [...], "series": [{"name", "values"}], "minor": 100}'> (or a "sankey": "nodes": [names],
// "links": [{"source", "target", "value"}]) is drawn from its JSON, so the page
// needs no inline script (CSP). Money series are in minor units and drawn in major units ("minor": 100).
// No HTML tooltip (ECharts' tooltip writes inline styles, which the CSP refuses); the element's
// aria-label says the chart in words, and every chart's table is downloadable as CSV / XLSX.
"use strict";

(function () {
  var COLORS = ["#2563eb", "#9ca3af", "#16a34a", "#d97706", "#dc2626", "#9333ea", "#0891b2"];

  function option(spec) {
    if (spec.kind === "sankey") {
      var unit = spec.minor || 1;
      return {
        color: COLORS,
        animation: false,
        series: [{
          type: "sankey",
          left: 8,
          right: 8,
          top: 8,
          bottom: 8,
          nodeGap: 14,
          emphasis: { focus: "adjacency" },
          lineStyle: { color: "gradient", curveness: 0.5, opacity: 0.45 },
          label: { fontSize: 12 },
          // the redeeming side's names inside, to the left of their nodes: the chart's width is the page's
          levels: [{ depth: 1, label: { position: "left" } }],
          edgeLabel: { show: true, fontSize: 11, formatter: function (p) { return String(p.value); } },
          data: spec.nodes.map(function (name) { return { name: name }; }),
          links: spec.links.map(function (l) { return { source: l.source, target: l.target, value: l.value / unit }; }),
        }],
      };
    }
    if (spec.kind === "hbar") {
      var per = spec.minor || 1;
      return {
        color: ["#dc2626", "#9ca3af"],
        animation: false,
        legend: { top: 0 },
        grid: { left: 8, right: 24, top: 32, bottom: 8, containLabel: true },
        yAxis: { type: "category", data: spec.labels },
        xAxis: { type: "value" },
        series: spec.series.map(function (s) {
          return {
            name: s.name,
            type: "bar",
            label: { show: true, position: "right" },
            data: s.values.map(function (v) { return v / per; }),
          };
        }),
      };
    }
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
    var scale = spec.minor || 1;
    return {
      // bars: blue, green, red first (issued / accepted / expired read so), then distinct hues
      color: spec.kind === "bar" ? ["#2563eb", "#16a34a", "#dc2626", "#d97706", "#9333ea", "#0891b2", "#9ca3af"] : COLORS,
      animation: false,
      legend: { top: 0 },
      grid: { left: 8, right: 16, top: 32, bottom: 8, containLabel: true },
      xAxis: { type: "category", data: spec.labels },
      yAxis: { type: "value" },
      series: spec.series.map(function (s) {
        return {
          name: s.name,
          type: spec.kind,
          smooth: false,
          data: s.values.map(function (v) { return v / scale; }),
        };
      }),
    };
  }

  function draw(element) {
    if (element.getAttribute("data-drawn") || !window.echarts) {
      return;
    }
    var chart = window.echarts.init(element, null, { renderer: "canvas" });
    chart.setOption(option(JSON.parse(element.getAttribute("data-dash-chart"))));
    element.setAttribute("data-drawn", "true");
    window.addEventListener("resize", function () { chart.resize(); });
  }

  function drawAll(root) {
    Array.prototype.forEach.call((root || document).querySelectorAll("[data-dash-chart]"), draw);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { drawAll(); });
  } else {
    drawAll();
  }
  document.addEventListener("htmx:afterSettle", function () { drawAll(); });
})();
