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
   * One chart: series [{ name, cls, points: [{t, v}] }] sharing a y axis from 0, placed by time (t, ms) over
   * the windowMs before now, which is the right edge; older points scroll off the left. While the agent
   * reports (hold), the newest value is drawn on to now: it sends a report only when a figure changed.
   * fmt labels the axis and the summary.
   */
  function chart(title, series, fmt, windowMs, now, hold) {
    var max = 0;
    series.forEach(function (s) { s.points.forEach(function (p) { if (p.v > max) max = p.v; }); });
    var top = niceTop(max);
    var svg = node('svg', { 'class': 'chart', viewBox: '0 0 ' + W + ' ' + H, role: 'img' });
    svg.appendChild(node('line', { 'class': 'axis', x1: LEFT, y1: TOP, x2: LEFT, y2: H - BOTTOM }));
    svg.appendChild(node('line', { 'class': 'axis', x1: LEFT, y1: H - BOTTOM, x2: W, y2: H - BOTTOM }));
    svg.appendChild(node('line', { 'class': 'axis', x1: LEFT, y1: TOP, x2: W, y2: TOP, 'stroke-dasharray': '2 3' }));
    svg.appendChild(node('text', { x: 2, y: TOP + 7 }, fmt(top)));
    svg.appendChild(node('text', { x: 2, y: H - BOTTOM }, fmt(0)));
    svg.appendChild(node('text', { x: LEFT, y: H - 2 }, '−' + seconds(windowMs / 1000)));
    svg.appendChild(node('text', { x: W - 18, y: H - 2 }, 'now'));
    var xOf = function (t) { return Math.max(LEFT, W - ((now - t) / windowMs) * (W - LEFT)); };
    var summary = [];
    series.forEach(function (s) {
      var n = s.points.length;
      var drawn = hold && n ? s.points.concat([{ t: now, v: s.points[n - 1].v }]) : s.points;
      var pts = drawn.map(function (p) {
        var y = H - BOTTOM - (p.v / top) * (H - BOTTOM - TOP);
        return xOf(p.t).toFixed(1) + ',' + y.toFixed(1);
      });
      var line = node('polyline', { 'class': s.cls, points: pts.join(' ') });
      line.setAttribute('data-series', s.name);
      if (n) {
        line.setAttribute('data-last', String(s.points[n - 1].v));
        line.setAttribute('data-last-at', new Date(s.points[n - 1].t).toISOString());
      }
      svg.appendChild(line);
      summary.push(s.name + ' ' + (n ? fmt(s.points[n - 1].v) : 'no samples'));
    });
    svg.setAttribute('aria-label', title + ' over the last ' + seconds(windowMs / 1000) + ': now ' + summary.join(', ') + '; peak ' + fmt(max));
    var fig = document.createElement('div');
    var legend = document.createElement('div');
    legend.className = 'legend';
    legend.setAttribute('aria-hidden', 'true');
    series.forEach(function (s) { var sp = document.createElement('span'); sp.className = s.cls; sp.textContent = s.name; legend.appendChild(sp); });
    fig.appendChild(legend);
    fig.appendChild(svg);
    return fig;
  }

  /** The charts of one LUN: throughput (read, write) and recovery point, from samples [{t, read, write, rpo}]. */
  function lunFigure(agentName, path, samples, windowMs, now, hold) {
    var fig = document.createElement('figure');
    fig.className = 'chart';
    fig.setAttribute('data-chart-lun', path);
    var cap = document.createElement('figcaption');
    cap.textContent = agentName + ': ' + path;
    fig.appendChild(cap);
    var io = chart('throughput of ' + path, [
      { name: 'write', cls: 's-write', points: samples.map(function (s) { return { t: s.t, v: s.write }; }) },
      { name: 'read', cls: 's-read', points: samples.map(function (s) { return { t: s.t, v: s.read }; }) },
    ], rate, windowMs, now, hold);
    io.setAttribute('data-chart', 'throughput');
    fig.appendChild(io);
    var rpoPoints = samples.filter(function (s) { return s.rpo !== null; }).map(function (s) { return { t: s.t, v: s.rpo }; });
    if (rpoPoints.length) {
      var rp = chart('recovery point of ' + path, [{ name: 'recovery point', cls: 's-rpo', points: rpoPoints }], seconds, windowMs, now, hold);
      rp.setAttribute('data-chart', 'recovery-point');
      fig.appendChild(rp);
    }
    return fig;
  }

  /** The recovery point's recent history in a LUN row: a sparkline of the values over windowMs. */
  function spark(values, windowMs) {
    var svg = document.createElementNS(NS, 'svg');
    svg.setAttribute('class', 'spark');
    svg.setAttribute('viewBox', '0 0 100 20');
    svg.setAttribute('preserveAspectRatio', 'none');
    svg.setAttribute('role', 'img');
    var max = Math.max.apply(null, values.concat([1]));
    svg.setAttribute('aria-label', 'recovery point over the last ' + seconds(windowMs / 1000) + ', peak ' + max.toFixed(0) + ' s');
    var pts = values.map(function (v, i) {
      var x = values.length > 1 ? (i * 100) / (values.length - 1) : 0;
      return x.toFixed(1) + ',' + (19 - (v / max) * 18).toFixed(1);
    });
    var line = document.createElementNS(NS, 'polyline');
    line.setAttribute('points', pts.join(' '));
    svg.appendChild(line);
    return svg;
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

  return { lunFigure: lunFigure, spark: spark, progressCell: progressCell, jobRate: jobRate, rate: rate, seconds: seconds };
})();
`;
