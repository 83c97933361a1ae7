// The dashboard's charts and jobs panel (served as /ui/charts.js, loaded before app.js): inline SVG drawn by
// the page from the samples it keeps of the agents' reports; nothing loaded from elsewhere. Plain ES2017,
// free of backticks and dollar-brace so it embeds verbatim in this String.raw literal.
export const CHARTS_JS = String.raw`
'use strict';
window.OutpostCharts = (function () {
  var NS = 'http://www.w3.org/2000/svg';
  var W = 300, H = 84, LEFT = 44, TOP = 6, BOTTOM = 14;

  function node(tag, attrs, text) {
    var e = document.createElementNS(NS, tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, String(attrs[k])); });
    if (text !== undefined) e.textContent = String(text);
    return e;
  }
  // decimal units, as rates are usually read (MB/s)
  function rate(n) {
    if (typeof n !== 'number' || !isFinite(n)) return '–';
    var u = ['B/s', 'kB/s', 'MB/s', 'GB/s'];
    var i = 0;
    while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
    return (n >= 100 || i === 0 ? Math.round(n) : n.toFixed(1)) + ' ' + u[i];
  }
  function amount(n, unit) {
    if (unit !== 'bytes') return Math.round(n) + ' ' + unit;
    return rate(n).replace('/s', '');
  }
  function seconds(n) {
    if (typeof n !== 'number' || !isFinite(n)) return '?';
    var t = Math.max(0, Math.round(n));
    if (t < 60) return t + ' s';
    if (t < 3600) return Math.floor(t / 60) + ' min ' + (t % 60) + ' s';
    return Math.floor(t / 3600) + ' h ' + Math.floor((t % 3600) / 60) + ' min';
  }
  // 1, 2, 5 × 10^k at or above v: axis tops people can read
  function niceTop(v) {
    if (!(v > 0)) return 1;
    var p = Math.pow(10, Math.floor(Math.log10(v)));
    var steps = [1, 2, 5, 10];
    for (var i = 0; i < steps.length; i++) if (steps[i] * p >= v) return steps[i] * p;
    return 10 * p;
  }

  /**
   * One chart: series [{ name, cls, values }] sharing a y axis from 0, newest sample at the right edge, slots
   * samples across (older ones scroll off the left). fmt labels the axis and the summary.
   */
  function chart(title, series, fmt, slots, stepSeconds) {
    var max = 0;
    series.forEach(function (s) { s.values.forEach(function (v) { if (v > max) max = v; }); });
    var top = niceTop(max);
    var svg = node('svg', { 'class': 'chart', viewBox: '0 0 ' + W + ' ' + H, role: 'img' });
    svg.appendChild(node('line', { 'class': 'axis', x1: LEFT, y1: TOP, x2: LEFT, y2: H - BOTTOM }));
    svg.appendChild(node('line', { 'class': 'axis', x1: LEFT, y1: H - BOTTOM, x2: W, y2: H - BOTTOM }));
    svg.appendChild(node('line', { 'class': 'axis', x1: LEFT, y1: TOP, x2: W, y2: TOP, 'stroke-dasharray': '2 3' }));
    svg.appendChild(node('text', { x: 2, y: TOP + 7 }, fmt(top)));
    svg.appendChild(node('text', { x: 2, y: H - BOTTOM }, fmt(0)));
    svg.appendChild(node('text', { x: LEFT, y: H - 2 }, '−' + seconds(slots * stepSeconds)));
    svg.appendChild(node('text', { x: W - 18, y: H - 2 }, 'now'));
    var step = (W - LEFT) / Math.max(1, slots - 1);
    var summary = [];
    series.forEach(function (s) {
      var n = s.values.length;
      var pts = s.values.map(function (v, i) {
        var x = W - (n - 1 - i) * step;
        var y = H - BOTTOM - (v / top) * (H - BOTTOM - TOP);
        return x.toFixed(1) + ',' + y.toFixed(1);
      });
      var line = node('polyline', { 'class': s.cls, points: pts.join(' ') });
      line.setAttribute('data-series', s.name);
      if (n) line.setAttribute('data-last', String(s.values[n - 1]));
      svg.appendChild(line);
      summary.push(s.name + ' ' + (n ? fmt(s.values[n - 1]) : 'no samples'));
    });
    svg.setAttribute('aria-label', title + ' over the last ' + seconds(slots * stepSeconds) + ': now ' + summary.join(', ') + '; peak ' + fmt(max));
    var fig = document.createElement('div');
    var legend = document.createElement('div');
    legend.className = 'legend';
    legend.setAttribute('aria-hidden', 'true');
    series.forEach(function (s) { var sp = document.createElement('span'); sp.className = s.cls; sp.textContent = s.name; legend.appendChild(sp); });
    fig.appendChild(legend);
    fig.appendChild(svg);
    return fig;
  }

  /** The charts of one LUN: throughput (read, write) and recovery point, from samples [{read, write, rpo}]. */
  function lunFigure(agentName, path, samples, slots, stepSeconds) {
    var fig = document.createElement('figure');
    fig.className = 'chart';
    fig.setAttribute('data-chart-lun', path);
    var cap = document.createElement('figcaption');
    cap.textContent = agentName + ': ' + path;
    fig.appendChild(cap);
    var io = chart('throughput of ' + path, [
      { name: 'write', cls: 's-write', values: samples.map(function (s) { return s.write; }) },
      { name: 'read', cls: 's-read', values: samples.map(function (s) { return s.read; }) },
    ], rate, slots, stepSeconds);
    io.setAttribute('data-chart', 'throughput');
    fig.appendChild(io);
    var rpoValues = samples.filter(function (s) { return s.rpo !== null; }).map(function (s) { return s.rpo; });
    if (rpoValues.length) {
      var rp = chart('recovery point of ' + path, [{ name: 'recovery point', cls: 's-rpo', values: rpoValues }], seconds, slots, stepSeconds);
      rp.setAttribute('data-chart', 'recovery-point');
      fig.appendChild(rp);
    }
    return fig;
  }

  /** A job's progress cell: a progress bar (indeterminate while the total is unknown) and its percent. */
  function progressCell(j) {
    var box = document.createElement('span');
    var bar = document.createElement('progress');
    bar.max = 100;
    var pct = j.state === 'done' ? 100 : j.total > 0 ? Math.min(100, Math.floor((j.done / j.total) * 100)) : null;
    if (pct !== null) bar.value = pct;
    bar.setAttribute('aria-label', j.kind + ' ' + j.subject + (pct === null ? '' : ' ' + pct + ' %'));
    box.appendChild(bar);
    var t = document.createElement('span');
    t.textContent = (pct === null ? '' : pct + ' % · ') + amount(j.done, j.unit) + (j.total ? ' of ' + amount(j.total, j.unit) : '');
    box.appendChild(t);
    return box;
  }

  function jobRate(j) {
    return j.unit === 'bytes' ? rate(j.rate) : Math.round(j.rate) + ' ' + j.unit + '/s';
  }

  return { lunFigure: lunFigure, progressCell: progressCell, jobRate: jobRate, rate: rate, seconds: seconds };
})();
`;
