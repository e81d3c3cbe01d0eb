// The console dashboard's charts, drawn with Chart.js from the JSON block #dashboard-charts:
// the series, the translated labels, the page's locale and the currency (money comes in
// minor units and is drawn in currency units with two decimals). No inline script.
(function () {
  "use strict";
  var block = document.getElementById("dashboard-charts");
  if (!block || typeof window.Chart === "undefined") { return; }
  var data;
  try { data = JSON.parse(block.textContent); } catch (error) { return; }
  var locale = data.locale || "en";
  var labels = data.labels || {};
  var perUnit = data.minor_per_unit || 100;
  var money = new Intl.NumberFormat(locale, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  var whole = new Intl.NumberFormat(locale, { maximumFractionDigits: 0 });
  var decimal = new Intl.NumberFormat(locale, { maximumFractionDigits: 1 });
  var dayFormat = new Intl.DateTimeFormat(locale, { month: "short", day: "numeric", timeZone: "UTC" });
  var monthFormat = new Intl.DateTimeFormat(locale, { year: "numeric", month: "short", timeZone: "UTC" });

  function dayLabel(iso) { return dayFormat.format(new Date(iso + "T00:00:00Z")); }
  function monthLabel(iso) { return monthFormat.format(new Date(iso + "-01T00:00:00Z")); }
  function inUnits(values) {
    return (values || []).map(function (v) { return v === null || v === undefined ? null : v / perUnit; });
  }
  function formatted(format) {
    return function (value) { return format.format(value); };
  }
  function tooltip(format) {
    return {
      callbacks: {
        label: function (item) {
          var value = item.parsed.y;
          return item.dataset.label + ": " + (value === null ? "—" : format.format(value));
        }
      }
    };
  }
  // A value axis; counts (lines, messages) get whole-number ticks only.
  function axis(title, format, extra) {
    var ticks = { callback: formatted(format) };
    if (format === whole) { ticks.precision = 0; }
    var scale = { beginAtZero: true, title: { display: true, text: title }, ticks: ticks };
    Object.keys(extra || {}).forEach(function (key) { scale[key] = extra[key]; });
    return scale;
  }
  function draw(id, config) {
    var canvas = document.getElementById(id);
    if (!canvas) { return; }
    config.options = config.options || {};
    config.options.locale = locale;
    config.options.responsive = true;
    config.options.maintainAspectRatio = false;
    config.options.animation = false;
    config.options.interaction = { mode: "index", intersect: false };
    new window.Chart(canvas, config);
  }

  // Lines in service (line, left axis) with activations and terminations (bars, right axis).
  if (data.lines) {
    draw("chart-lines", {
      data: {
        labels: data.lines.days.map(dayLabel),
        datasets: [
          { type: "line", label: labels.in_service, data: data.lines.in_service, yAxisID: "lines", tension: 0.2 },
          { type: "bar", label: labels.activations, data: data.lines.activations, yAxisID: "moves" },
          { type: "bar", label: labels.terminations, data: data.lines.terminations, yAxisID: "moves" }
        ]
      },
      options: {
        plugins: { tooltip: tooltip(whole) },
        scales: {
          x: { title: { display: true, text: labels.day } },
          lines: axis(labels.in_service, whole, { position: "left" }),
          moves: axis(labels.activations + " / " + labels.terminations, whole,
                      { position: "right", grid: { drawOnChartArea: false } })
        }
      }
    });
  }

  // Revenue stacked by kind beside the wholesale cost, and the margin as a line.
  if (data.revenue) {
    var revenue = data.revenue;
    draw("chart-revenue", {
      data: {
        labels: revenue.months.map(monthLabel),
        datasets: [
          { type: "bar", label: labels.plans, data: inUnits(revenue.plans), stack: "revenue" },
          { type: "bar", label: labels.addons, data: inUnits(revenue.addons), stack: "revenue" },
          { type: "bar", label: labels.overage, data: inUnits(revenue.overage), stack: "revenue" },
          { type: "bar", label: labels.cost, data: inUnits(revenue.cost), stack: "cost" },
          { type: "line", label: labels.margin, data: inUnits(revenue.margin), tension: 0.2 }
        ]
      },
      options: {
        plugins: { tooltip: tooltip(money) },
        scales: {
          x: { stacked: true, title: { display: true, text: labels.month } },
          y: axis(labels.amount, money, { stacked: true, beginAtZero: true })
        }
      }
    });
  }

  // Plan sales, one stacked bar per plan.
  if (data.plans) {
    draw("chart-plans", {
      type: "bar",
      data: {
        labels: data.plans.months.map(monthLabel),
        datasets: data.plans.series.map(function (series) {
          return { label: series.label, data: inUnits(series.data), stack: "plans" };
        })
      },
      options: {
        plugins: { tooltip: tooltip(money) },
        scales: {
          x: { stacked: true, title: { display: true, text: labels.month } },
          y: axis(labels.amount, money, { stacked: true })
        }
      }
    });
  }

  if (data.arpu) {
    draw("chart-arpu", {
      type: "line",
      data: {
        labels: data.arpu.months.map(monthLabel),
        datasets: [{ label: labels.arpu, data: inUnits(data.arpu.arpu), tension: 0.2, spanGaps: true }]
      },
      options: {
        plugins: { tooltip: tooltip(money) },
        scales: {
          x: { title: { display: true, text: labels.month } },
          y: axis(labels.amount, money)
        }
      }
    });
  }

  // Usage: one bar chart per service, in MB, minutes and messages.
  if (data.usage) {
    data.usage.charts.forEach(function (series) {
      var format = series.service === "sms" ? whole : decimal;
      draw("chart-usage-" + series.service, {
        type: "bar",
        data: {
          labels: data.usage.days.map(dayLabel),
          datasets: [{ label: series.title, data: series.data }]
        },
        options: {
          plugins: { title: { display: true, text: series.title }, tooltip: tooltip(format) },
          scales: {
            x: { title: { display: true, text: labels.day } },
            y: axis(series.title, format)
          }
        }
      });
    });
  }
}());
