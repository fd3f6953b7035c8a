// Building the page: elements from data (never HTML strings, so a name
// is text, whatever it contains), and the words the console shows for the
// API's codes.

const SVG_NS = 'http://www.w3.org/2000/svg';

function build(element, attrs, children) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      element.addEventListener(key.slice(2), value);
    } else {
      element.setAttribute(key, value === true ? '' : String(value));
    }
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** An HTML element. */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** An SVG element. */
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

export const CITIES = [
  ['150100', '呼和浩特'],
  ['150200', '包头'],
];

/** A city's name, or its code when the console does not know it. */
export function cityName(code) {
  const known = CITIES.find(([c]) => c === code);
  return known ? known[1] : code || '—';
}

const WORDS = {
  SCHEDULED: '待开始',
  ACTIVE: '在岗',
  ENDED: '已结束',
  EXPIRED: '已期满',
  COMMISSIONER_ACTIVE: '在任',
  COMMISSIONER_SUSPENDED: '暂停',
  COMMISSIONER_RETIRED: '已退出',
  WORKSTATION_OPEN: '运行中',
  WORKSTATION_CLOSED: '已关闭',
  DEMAND_OPEN: '待对接',
  DEMAND_DISPATCHED: '已派驻',
  DEMAND_RESOLVED: '已解决',
  DEMAND_WITHDRAWN: '已撤回',
  EXCELLENT: '优秀',
  GOOD: '良好',
  PASS: '合格',
  FAIL: '不合格',
  ENTERPRISE: '企业',
  UNIVERSITY: '高校',
  RESEARCH_INSTITUTE: '科研院所',
  INDIVIDUAL: '个人',
};

/** The Chinese word for an enum name of the API. */
export function word(code) {
  return WORDS[code] || code || '—';
}

/** A whole number with thousands separators (u64 fields arrive as strings). */
export function num(value) {
  return Number(value || 0).toLocaleString('zh-CN');
}

/** Minutes as hours with one decimal. */
export function hours(minutes) {
  return (Number(minutes || 0) / 60).toLocaleString('zh-CN', { maximumFractionDigits: 1 });
}

/** Today in UTC+8, the region's date, as YYYY-MM-DD. */
export function regionToday() {
  return new Date(Date.now() + 8 * 3600 * 1000).toISOString().slice(0, 10);
}

/** A table that scrolls sideways on a narrow screen. */
export function table(caption, head, rows, attrs = {}) {
  return h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': caption },
    h('table', attrs,
      h('caption', {}, caption),
      h('thead', {}, h('tr', {}, head.map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, rows)));
}

/** A status badge. */
export function badge(code) {
  return h('span', { class: `badge b-${String(code).toLowerCase()}` }, word(code));
}
