// Daily usage and wholesale cost per service on the settlement page: one chart per
// service, usage as bars (left axis) and cost as a line (right axis). The series and
// the translated labels come from the JSON block #usage-chart-series; no inline script.
(function () {
  "use strict";
  var block = document.getElementById("usage-chart-series");
  if (!block || typeof window.Chart === "undefined") { return; }
  var data;
  try { data = JSON.parse(block.textContent); } catch (error) { return; }
  var labels = data.labels || {};
  (data.charts || []).forEach(function (series) {
    var canvas = document.getElementById("usage-chart-" + series.service);
    if (!canvas) { return; }
    new window.Chart(canvas, {
      data: {
        labels: data.days,
        datasets: [
          { type: "bar", label: series.title, data: series.quantity, yAxisID: "quantity" },
          { type: "line", label: labels.cost, data: series.cost, yAxisID: "cost", tension: 0.2 }
        ]
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: "index", intersect: false },
        plugins: { title: { display: true, text: series.title } },
        scales: {
          x: { title: { display: true, text: labels.day } },
          quantity: { type: "linear", position: "left", beginAtZero: true,
                      title: { display: true, text: series.title } },
          cost: { type: "linear", position: "right", beginAtZero: true,
                  grid: { drawOnChartArea: false },
                  title: { display: true, text: labels.cost } }
        }
      }
    });
  });
}());
