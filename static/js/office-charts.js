// The back office's charts (web/office/templates/office/dashboard.html): each <canvas data-chart="ID"> is drawn with
// Chart.js (served from our origin) from the JSON in <script type="application/json" id="ID">:
// {kind: "line"|"bar"|"matrix", columns: [x, series...], rows: [[x, v1, ...], ...]}. The same rows are in the
// table under the chart and in its CSV. No inline script: the page's CSP stays strict.
(function () {
  "use strict";
  const COLOURS = ["#0b4f8a", "#c0392b", "#1e8449", "#b58100", "#6c3483", "#117a8b"];

  function spec(id) {
    const node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  function matrixConfig(data) {
    const days = [];
    data.rows.forEach((r) => { if (!days.includes(r[0])) days.push(r[0]); });
    const max = Math.max(1, ...data.rows.map((r) => r[2]));
    return {
      type: "matrix",
      data: {
        datasets: [{
          label: data.columns[2],
          data: data.rows.map((r) => ({ x: String(r[1]).padStart(2, "0"), y: r[0], v: r[2] })),
          backgroundColor: (ctx) => {
            const v = ctx.raw ? ctx.raw.v : 0;
            return `rgba(11, 79, 138, ${0.08 + 0.92 * (v / max)})`;
          },
          borderWidth: 0,
          width: ({ chart }) => ((chart.chartArea || {}).width || 0) / 24 - 1,
          height: ({ chart }) => ((chart.chartArea || {}).height || 0) / days.length - 1,
        }],
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        plugins: { legend: { display: false },
          tooltip: { callbacks: { label: (item) => `${item.raw.y} ${item.raw.x}:00 — ${item.raw.v}` } } },
        scales: {
          x: { type: "category", labels: Array.from({ length: 24 }, (_, h) => String(h).padStart(2, "0")),
               grid: { display: false } },
          y: { type: "category", labels: days, offset: true, grid: { display: false } },
        },
      },
    };
  }

  function seriesConfig(data) {
    const labels = data.rows.map((r) => String(r[0]));
    const datasets = [];
    for (let i = 1; i < data.columns.length; i += 1) {
      if (!data.rows.every((r) => typeof r[i] === "number")) continue; // text columns stay in the table
      const colour = COLOURS[(i - 1) % COLOURS.length];
      datasets.push({ label: data.columns[i], data: data.rows.map((r) => r[i]), borderColor: colour,
                      backgroundColor: colour, tension: 0.2, pointRadius: data.rows.length > 60 ? 0 : 2 });
    }
    return {
      type: data.kind === "line" ? "line" : "bar",
      data: { labels, datasets },
      options: { animation: false, maintainAspectRatio: false, scales: { y: { beginAtZero: true } },
                 plugins: { legend: { display: datasets.length > 1 } } },
    };
  }

  function draw() {
    if (typeof window.Chart === "undefined") return;
    document.querySelectorAll("canvas[data-chart]").forEach((canvas) => {
      const data = spec(canvas.dataset.chart);
      if (!data) return;
      const config = data.kind === "matrix" ? matrixConfig(data) : seriesConfig(data);
      const chart = new window.Chart(canvas, config);
      canvas.dataset.drawn = chart ? "true" : "false";
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
