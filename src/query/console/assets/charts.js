// Charts drawn as SVG by hand: the city flows, a timeline of posts, and
// bars by month against a limit. Each takes the width it is drawn at, so
// text keeps its size on a phone instead of shrinking with a viewBox.

import { s, cityName, CITIES, num } from './dom.js';

const DAY = 86400000;

/** A YYYY-MM-DD date as days since 1970-01-01. */
export function dayOf(date) {
  return Math.floor(Date.parse(`${date}T00:00:00Z`) / DAY);
}

function dateOf(day) {
  return new Date(day * DAY).toISOString().slice(0, 10);
}

function label(x, y, text, attrs = {}) {
  return s('text', { x, y, class: 'label', ...attrs }, text);
}

/**
 * The city matrix as flows from home cities (left) to the cities served
 * (right): one band per cell, as wide as its hours per month.
 */
export function cityFlows(cells, width) {
  const height = 300;
  const nodeW = Math.min(140, Math.round(width * 0.26));
  const x0 = nodeW + 8;
  const x1 = width - nodeW - 8;
  const nodeY = [60, 190];
  const attach = [20, 50];
  const maxHours = Math.max(1, ...cells.map((c) => c.hours_per_month));
  const index = (code) => CITIES.findIndex(([c]) => c === code);
  const short = width < 640;
  const parts = [
    label(4, 30, short ? '户籍城市' : '户籍城市（派出）', { class: 'axis' }),
    label(width - 4, 30, short ? '服务城市' : '服务城市（派驻）', { class: 'axis', 'text-anchor': 'end' }),
  ];
  const flows = [];
  const labels = [];
  for (const cell of cells) {
    const i = index(cell.home_city);
    const j = index(cell.serving_city);
    if (i < 0 || j < 0 || cell.active_posts === 0) continue;
    const ya = nodeY[i] + attach[j];
    const yb = nodeY[j] + attach[i];
    const xm = (x0 + x1) / 2;
    const widthOf = 3 + Math.round((24 * cell.hours_per_month) / maxHours);
    const cross = i !== j;
    flows.push(s('path', {
      d: `M ${x0} ${ya} C ${xm} ${ya}, ${xm} ${yb}, ${x1} ${yb}`,
      class: cross ? 'flow cross' : 'flow same',
      'stroke-width': widthOf,
      fill: 'none',
      'data-home': cell.home_city,
      'data-serving': cell.serving_city,
    }, s('title', {}, `${cityName(cell.home_city)} → ${cityName(cell.serving_city)}：${cell.active_posts} 个岗位，${cell.hours_per_month} 小时/月`)));
    // Cross flows meet in the middle: their labels sit a quarter in.
    const t = !cross ? 0.5 : i === 0 ? 0.25 : 0.75;
    const bx = (1 - t) ** 3 * x0 + 3 * (1 - t) ** 2 * t * xm + 3 * (1 - t) * t * t * xm + t ** 3 * x1;
    const by = (1 - t) ** 3 * ya + 3 * (1 - t) ** 2 * t * ya + 3 * (1 - t) * t * t * yb + t ** 3 * yb;
    const text = short
      ? `${cell.active_posts}岗/${cell.hours_per_month}时`
      : `${cell.active_posts} 岗 · ${cell.hours_per_month} 时/月`;
    labels.push(label(bx, by + 5, text, { class: 'flow-label', 'text-anchor': 'middle' }));
  }
  parts.push(...flows);
  CITIES.forEach(([, name], k) => {
    parts.push(s('rect', { x: 4, y: nodeY[k], width: nodeW, height: 70, rx: 8, class: 'node' }));
    parts.push(label(4 + nodeW / 2, nodeY[k] + 42, name, { 'text-anchor': 'middle', class: 'node-label' }));
    parts.push(s('rect', { x: width - 4 - nodeW, y: nodeY[k], width: nodeW, height: 70, rx: 8, class: 'node' }));
    parts.push(label(width - 4 - nodeW / 2, nodeY[k] + 42, name, { 'text-anchor': 'middle', class: 'node-label' }));
  });
  parts.push(...labels);
  return s('svg', {
    width, height, viewBox: `0 0 ${width} ${height}`, class: 'chart flows', role: 'img',
    'aria-label': '户籍城市到服务城市的派驻流向',
  }, parts);
}

/** The months from `first` to `last` (YYYY-MM-DD), as [first day, last day]. */
function months(first, last) {
  const out = [];
  let [y, m] = first.slice(0, 7).split('-').map(Number);
  const end = last.slice(0, 7);
  while (out.length < 120) {
    const key = `${y}-${String(m).padStart(2, '0')}`;
    const next = m === 12 ? `${y + 1}-01` : `${y}-${String(m + 1).padStart(2, '0')}`;
    out.push({ key, from: dayOf(`${key}-01`), to: dayOf(`${next}-01`) - 1 });
    if (key >= end) break;
    [y, m] = next.split('-').map(Number);
  }
  return out;
}

/** The months a chart spans: the posts' terms, at most four years around `onDate`. */
export function span(posts, onDate) {
  if (posts.length === 0) return [];
  let first = posts.reduce((a, p) => (p.start_date < a ? p.start_date : a), onDate);
  let last = posts.reduce((a, p) => (p.end_date > a ? p.end_date : a), onDate);
  const around = dayOf(onDate);
  if (dayOf(first) < around - 730) first = dateOf(around - 730);
  if (dayOf(last) > around + 730) last = dateOf(around + 730);
  return months(first, last);
}

/**
 * Per month, the highest sum of `weight(post)` over the posts in term on any
 * one day: the sum only rises on a start, so the month's first day and the
 * starts inside it are the days to look at (the day-by-day rule of the
 * domain, seen a month at a time).
 */
export function monthlyPeak(posts, monthList, weight) {
  const terms = posts.map((p) => ({ from: dayOf(p.start_date), to: dayOf(p.end_date), w: weight(p) }));
  return monthList.map((month) => {
    const days = [month.from, ...terms.filter((t) => t.from > month.from && t.from <= month.to).map((t) => t.from)];
    const value = Math.max(0, ...days.map((d) => terms.filter((t) => t.from <= d && d <= t.to).reduce((a, t) => a + t.w, 0)));
    return { month: month.key, value };
  });
}

/** Bars by month with a dashed limit line; a bar over the limit is marked. */
export function monthBars(series, limit, width, unit, title) {
  const height = 220;
  const left = 44;
  const bottom = 28;
  const top = 16;
  const max = Math.max(limit * 1.15, ...series.map((p) => p.value), 1);
  const plotH = height - bottom - top;
  const step = (width - left - 8) / Math.max(series.length, 1);
  const y = (v) => top + plotH - (v / max) * plotH;
  const parts = [];
  for (const tick of [0, limit / 2, limit]) {
    parts.push(s('line', { x1: left, x2: width - 4, y1: y(tick), y2: y(tick), class: 'grid' }));
    parts.push(label(left - 6, y(tick) + 4, num(tick), { 'text-anchor': 'end', class: 'tick' }));
  }
  const every = Math.ceil(series.length / Math.max(1, Math.floor((width - left) / 56)));
  series.forEach((p, k) => {
    const x = left + k * step;
    const over = p.value > limit;
    parts.push(s('rect', {
      x: x + 1, y: y(p.value), width: Math.max(step - 2, 1), height: y(0) - y(p.value),
      class: over ? 'bar over' : 'bar', 'data-month': p.month, 'data-value': p.value,
    }, s('title', {}, `${p.month}：${p.value} ${unit}`)));
    if (k % every === 0) {
      parts.push(label(x + step / 2, height - 8, p.month, { 'text-anchor': 'middle', class: 'tick' }));
    }
  });
  parts.push(s('line', { x1: left, x2: width - 4, y1: y(limit), y2: y(limit), class: 'limit' }));
  parts.push(label(width - 6, y(limit) - 5, `上限 ${limit} ${unit}`, { 'text-anchor': 'end', class: 'limit-label' }));
  return s('svg', { width, height, viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img', 'aria-label': title }, parts);
}

/** Posts as bars along time; each bar links to `href(post)`; `onDate` marked. */
export function timeline(posts, onDate, width, href, text) {
  const monthList = span(posts, onDate);
  if (monthList.length === 0) return null;
  const from = monthList[0].from;
  const to = monthList[monthList.length - 1].to + 1;
  const left = 8;
  const row = 40;
  const top = 26;
  const height = top + posts.length * row + 8;
  const x = (d) => left + ((Math.min(Math.max(d, from), to) - from) / (to - from)) * (width - left - 8);
  const parts = [];
  for (const month of monthList) {
    if (month.key.endsWith('-01')) {
      parts.push(s('line', { x1: x(month.from), x2: x(month.from), y1: 18, y2: height, class: 'grid' }));
      parts.push(label(x(month.from) + 3, 14, month.key.slice(0, 4), { class: 'tick' }));
    }
  }
  posts.forEach((p, k) => {
    const y0 = top + k * row;
    const a = x(dayOf(p.start_date));
    const b = Math.max(x(dayOf(p.end_date) + 1), a + 3);
    parts.push(s('a', { href: href(p), class: 'bar-link' },
      s('rect', { x: a, y: y0 + 18, width: b - a, height: 14, rx: 3, class: `term t-${p.status.toLowerCase()}` }),
      label(Math.min(a, width - 200), y0 + 13, text(p), { class: 'term-label' }),
      s('title', {}, `${text(p)}：${p.start_date} 至 ${p.end_date}`)));
  });
  const today = x(dayOf(onDate));
  parts.push(s('line', { x1: today, x2: today, y1: 18, y2: height, class: 'today' }));
  return s('svg', { width, height, viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img', 'aria-label': '岗位时间线' }, parts);
}

/** Horizontal bars of `value(row)` labelled by `name(row)`. */
export function rankBars(rows, width, name, value, title) {
  const row = 26;
  const nameW = Math.min(190, Math.round(width * 0.38));
  const height = rows.length * row + 8;
  const max = Math.max(1, ...rows.map(value));
  const parts = [];
  rows.forEach((r, k) => {
    const y0 = 4 + k * row;
    const w = ((width - nameW - 60) * value(r)) / max;
    parts.push(label(nameW - 6, y0 + 17, name(r), { 'text-anchor': 'end', class: 'tick name' }));
    parts.push(s('rect', { x: nameW, y: y0 + 4, width: Math.max(w, 1), height: 18, rx: 3, class: 'bar' }));
    parts.push(label(nameW + Math.max(w, 1) + 5, y0 + 18, num(value(r)), { class: 'tick' }));
  });
  return s('svg', { width, height, viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img', 'aria-label': title }, parts);
}
