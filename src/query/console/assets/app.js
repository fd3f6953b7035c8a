// The console's shell: hash routes (#/page/id?params), the date and the
// history slider shared by every page, and one render per route change.

import { getJson, withParams } from './api.js';
import { PAGES, errorPage, link } from './pages.js';
import { h, regionToday } from './dom.js';

const content = document.getElementById('content');
const dateInput = document.getElementById('on-date');
const slider = document.getElementById('history');
const sliderLabel = document.getElementById('history-label');
const latest = document.getElementById('history-latest');

let current = null;
let renders = 0;

/** The route in the hash: `#/commissioner/<id>?on_date=…`. */
function parseRoute() {
  const hash = location.hash.replace(/^#/, '') || '/';
  const [path, query = ''] = hash.split('?', 2);
  const segments = path.split('/').filter(Boolean).map(decodeURIComponent);
  const params = {};
  for (const [key, value] of new URLSearchParams(query)) params[key] = value;
  return { path: `/${segments.map(encodeURIComponent).join('/')}`, page: segments[0] || '', id: segments[1] || '', params };
}

function go(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

/** The current route with `changes` applied (undefined deletes). */
function withChanges(changes) {
  const params = { ...current.params };
  delete params.page_token;
  for (const [key, value] of Object.entries(changes)) {
    if (value === undefined || value === '') delete params[key];
    else params[key] = value;
  }
  return `#${withParams(current.path, params)}`;
}

function showPosition(position, head) {
  sliderLabel.textContent = position >= head ? `最新（第 ${head} 个事件）` : `第 ${position} / ${head} 个事件`;
}

dateInput.addEventListener('change', () => {
  // The assessment's year follows the date unless chosen on its own.
  go(withChanges({ on_date: dateInput.value, year: undefined }));
});
slider.addEventListener('input', () => showPosition(Number(slider.value), Number(slider.max)));
slider.addEventListener('change', () => {
  const position = Number(slider.value);
  go(withChanges({ as_of_position: position >= Number(slider.max) ? undefined : String(position) }));
});
latest.addEventListener('click', () => go(withChanges({ as_of_position: undefined })));

function updateNav(route) {
  for (const a of document.querySelectorAll('[data-nav]')) {
    const name = a.dataset.nav;
    const path = name === 'overview' ? '/' : `/${name}`;
    a.href = link({ params: route.params }, path);
    const here = (route.page || 'overview') === name
      || (name === 'demands' && route.page === 'demand');
    if (here) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

async function render() {
  const route = parseRoute();
  const moved = !current || current.page !== route.page || current.id !== route.id;
  current = route;
  const seq = ++renders;
  document.body.dataset.state = 'loading';
  updateNav(route);
  const page = PAGES[route.page];
  const width = Math.max(300, Math.min(960, content.clientWidth - 34));
  const onDate = route.params.on_date || regionToday();
  const ctx = { ...route, width, onDate, go };
  dateInput.value = /^\d{4}-\d{2}-\d{2}$/.test(onDate) ? onDate : '';
  let nodes;
  let state = 'ready';
  const status = getJson('/v1/status').catch(() => null);
  try {
    if (!page || (['commissioner', 'workstation', 'demand'].includes(route.page) && !route.id)) {
      throw Object.assign(new Error(`没有这个页面：${route.path}`), { code: 'NOT_FOUND' });
    }
    const data = await page.load(ctx);
    nodes = page.render(data, ctx);
    document.title = `${page.title} · 科技特派员协同控制台`;
  } catch (error) {
    nodes = errorPage(error);
    state = 'error';
    document.title = '出错 · 科技特派员协同控制台';
  }
  const known = await status;
  if (seq !== renders) return;
  const head = known ? Math.max(1, ...known.projections.map((p) => Number(p.checkpoint))) : 1;
  const asked = Number(route.params.as_of_position);
  const position = Number.isInteger(asked) && asked > 0 ? Math.min(asked, head) : head;
  slider.max = String(head);
  slider.value = String(position);
  showPosition(position, head);
  content.replaceChildren(...nodes.filter(Boolean));
  if (moved && renders > 1) content.focus();
  performance.mark('tepai-rendered');
  // A count of finished renders, so a reader (or a test) can tell this
  // render's state from the previous one's.
  document.body.dataset.renders = String(seq);
  document.body.dataset.state = state;
}

window.addEventListener('hashchange', render);
render().catch((error) => {
  content.replaceChildren(h('p', { class: 'error', role: 'alert' }, `控制台出错：${error.message}`));
  document.body.dataset.state = 'error';
});
