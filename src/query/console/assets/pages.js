// The pages. Each forwards the parameters of its URL to its /v1 view
// unchanged (less the console's own), so a bad one is answered by the API
// and its message is what the page shows.

import { getJson, withParams } from './api.js';
import { h, cityName, CITIES, word, num, hours, table, badge } from './dom.js';
import { cityFlows, monthBars, monthlyPeak, span, timeline, rankBars } from './charts.js';

/** The hours a commissioner may hold a month (the default policy's limit). */
const HOURS_LIMIT = 80;

/** Parameters that carry the reader's place in time from page to page. */
const TIME = ['on_date', 'as_of_position'];

/** A console link to `path`, keeping the date and history position. */
export function link(ctx, path, params = {}) {
  const keep = {};
  for (const key of TIME) {
    if (ctx.params[key] !== undefined) keep[key] = ctx.params[key];
  }
  return `#${withParams(path, { ...keep, ...params })}`;
}

function without(params, ...keys) {
  const out = { ...params };
  for (const key of keys) delete out[key];
  return out;
}

function stat(label, value, attrs = {}) {
  return h('div', { class: 'stat', ...attrs }, h('div', { class: 'stat-value' }, value), h('div', { class: 'stat-label' }, label));
}

function select(name, label, options, current) {
  return h('label', { class: 'field' }, label,
    h('select', { name },
      options.map(([value, text]) => h('option', { value, selected: value === (current || '') }, text))));
}

const CITY_OPTIONS = [['', '全部'], ...CITIES];

/** A filter form: on submit, its non-empty fields become the URL's parameters. */
function filterForm(ctx, path, fields, keepParams = {}) {
  return h('form', {
    class: 'filters', role: 'search', 'aria-label': '筛选',
    onsubmit: (event) => {
      event.preventDefault();
      const data = new FormData(event.target);
      const params = { ...keepParams };
      for (const [key, value] of data.entries()) {
        if (value !== '') params[key] = value;
      }
      ctx.go(link(ctx, path, params));
    },
  }, fields, h('div', { class: 'actions' },
    h('button', { type: 'submit' }, '筛选'),
    h('a', { href: link(ctx, path), class: 'button secondary' }, '清除')));
}

function pager(ctx, path, params, next) {
  return h('nav', { class: 'pager', 'aria-label': '分页' },
    params.page_token ? h('a', { href: link(ctx, path, without(params, 'page_token')), rel: 'first' }, '« 第一页') : null,
    next ? h('a', { href: link(ctx, path, { ...params, page_token: next }), rel: 'next' }, '下一页 »') : h('span', { class: 'muted' }, '已是最后一页'));
}

function assignmentRow(ctx, a) {
  return h('tr', { 'data-post': a.post_id },
    h('td', {}, h('a', { href: link(ctx, `/commissioner/${a.commissioner_id}`), class: 'commissioner' }, a.commissioner_name)),
    h('td', {}, cityName(a.home_city)),
    h('td', {}, h('a', { href: link(ctx, `/workstation/${a.workstation_id}`), class: 'workstation' }, a.workstation_name)),
    h('td', {}, cityName(a.serving_city)),
    h('td', {}, a.cross_city ? h('span', { class: 'badge b-cross' }, '跨市') : '本市'),
    h('td', {}, a.role),
    h('td', { class: 'n hours' }, a.hours_per_month),
    h('td', { class: 'dates' }, `${a.start_date} 至 ${a.end_date}`),
    h('td', {}, badge(a.status)));
}

/** The posts a timeline draws: those in term first, then the coming ones,
 * then the rest, at most [`TIMELINE_POSTS`]; with a note when some are left
 * out (the table below lists them all). */
const TIMELINE_POSTS = 40;
function timelineOf(ctx, posts, onDate, href, text) {
  const order = { ACTIVE: 0, SCHEDULED: 1 };
  const sorted = [...posts].sort((a, b) => (order[a.status] ?? 2) - (order[b.status] ?? 2));
  const shown = sorted.slice(0, TIMELINE_POSTS);
  const chart = timeline(shown, onDate, ctx.width, href, text);
  if (!chart) return h('p', { class: 'empty' }, '尚无岗位。');
  return [chart, shown.length < posts.length ? h('p', { class: 'legend' }, `显示 ${shown.length} / ${posts.length} 个岗位（在岗的在前）；全部见下表。`) : null];
}

const ASSIGNMENT_HEAD = ['特派员', '户籍', '工作站', '服务城市', '跨市', '岗位', '小时/月', '任期', '状态'];

const overview = {
  title: '总览',
  async load(ctx) {
    return getJson('/v1/city-matrix', ctx.params);
  },
  render(m, ctx) {
    const cells = m.cells;
    const total = (f) => cells.reduce((a, c) => a + Number(c[f]), 0);
    const cross = cells.filter((c) => c.home_city !== c.serving_city);
    const crossTotal = (f) => cross.reduce((a, c) => a + Number(c[f]), 0);
    const share = (part, all) => (all === 0 ? '—' : `${((100 * part) / all).toFixed(1)}%`);
    const cellOf = (home, serving) => cells.find((c) => c.home_city === home && c.serving_city === serving)
      || { home_city: home, serving_city: serving, active_posts: 0, hours_per_month: 0, service_minutes: '0' };
    const sum = (list) => ({
      posts: list.reduce((a, c) => a + c.active_posts, 0),
      hours: list.reduce((a, c) => a + c.hours_per_month, 0),
      minutes: list.reduce((a, c) => a + Number(c.service_minutes), 0),
    });
    const totalCell = (list, key) => {
      const t = sum(list);
      return h('td', { 'data-sum': key }, `${num(t.posts)} 岗 · ${num(t.hours)} 时/月 · ${num(t.minutes)} 分钟`);
    };
    const rows = CITIES.map(([home, homeName]) => h('tr', {},
      h('th', { scope: 'row' }, homeName),
      CITIES.map(([serving]) => {
        const c = cellOf(home, serving);
        return h('td', { 'data-cell': `${home}-${serving}` },
          h('a', { href: link(ctx, '/assignments', { home_city: home, serving_city: serving, status: 'active', on_date: m.on_date }) },
            h('span', { class: 'posts' }, c.active_posts), ' 岗 · ',
            h('span', { class: 'hours' }, c.hours_per_month), ' 时/月 · ',
            h('span', { class: 'minutes' }, num(c.service_minutes)), ' 分钟'));
      }),
      totalCell(cells.filter((c) => c.home_city === home), `home-${home}`)));
    rows.push(h('tr', { class: 'sum' }, h('th', { scope: 'row' }, '合计'),
      CITIES.map(([serving]) => totalCell(cells.filter((c) => c.serving_city === serving), `serving-${serving}`)),
      totalCell(cells, 'all')));
    return [
      h('h1', {}, '呼包两市派驻总览'),
      h('p', { class: 'lead' }, `${m.on_date} 在岗岗位；服务时长统计 ${m.from_date} 至 ${m.to_date}；事件位置 ${m.as_of_position}`),
      h('div', { class: 'stats' },
        stat('在岗岗位', num(total('active_posts')), { 'data-total': 'posts' }),
        stat('每月服务小时', num(total('hours_per_month')), { 'data-total': 'hours' }),
        stat('服务时长（分钟）', num(total('service_minutes')), { 'data-total': 'minutes' }),
        stat('跨市岗位占比', share(crossTotal('active_posts'), total('active_posts')), { 'data-total': 'cross-share' }),
        stat('跨市小时占比', share(crossTotal('hours_per_month'), total('hours_per_month')))),
      h('section', { class: 'card' }, h('h2', {}, '人才流向'),
        cityFlows(cells, ctx.width),
        h('p', { class: 'legend' }, h('span', { class: 'key same' }), '本市服务 ', h('span', { class: 'key cross' }), '跨市服务；线宽为每月服务小时')),
      table('城市矩阵（行：户籍城市；列：服务城市）', ['户籍 \\ 服务', ...CITIES.map(([, n]) => n), '合计'], rows, { class: 'matrix' }),
    ];
  },
};

const assignments = {
  title: '派驻',
  async load(ctx) {
    return getJson('/v1/assignments', ctx.params);
  },
  render(page, ctx) {
    const p = ctx.params;
    const rows = page.assignments.map((a) => assignmentRow(ctx, a));
    return [
      h('h1', {}, '派驻岗位'),
      filterForm(ctx, '/assignments', [
        select('home_city', '户籍城市', CITY_OPTIONS, p.home_city),
        select('serving_city', '服务城市', CITY_OPTIONS, p.serving_city),
        select('status', '状态', [['', '全部'], ['scheduled', '待开始'], ['active', '在岗'], ['ended', '已结束'], ['expired', '已期满']], p.status),
        h('label', { class: 'field' }, '特派员 ID', h('input', { name: 'commissioner_id', value: p.commissioner_id || '', size: 36, autocomplete: 'off' })),
        h('label', { class: 'field' }, '工作站 ID', h('input', { name: 'workstation_id', value: p.workstation_id || '', size: 36, autocomplete: 'off' })),
        h('label', { class: 'field check' }, h('input', { type: 'checkbox', name: 'cross_city_only', value: 'true', checked: p.cross_city_only === 'true' }), '只看跨市'),
        select('page_size', '每页', [['', '默认'], ['20', '20'], ['50', '50'], ['100', '100']], p.page_size),
      ], TIME.reduce((o, k) => (p[k] ? { ...o, [k]: p[k] } : o), {})),
      h('p', { class: 'toolbar' },
        h('span', { id: 'row-count' }, `本页 ${page.assignments.length} 条 · 事件位置 ${page.as_of_position}`),
        h('a', { href: withParams('/v1/assignments.csv', p), class: 'button secondary', download: 'assignments.csv' }, '下载本页 CSV')),
      rows.length ? table('派驻岗位', ASSIGNMENT_HEAD, rows, { class: 'assignments' }) : h('p', { class: 'empty' }, '没有符合条件的岗位。'),
      pager(ctx, '/assignments', p, page.next_page_token),
    ];
  },
};

function serviceByMonth(months) {
  if (!months || !months.length) return h('p', { class: 'empty service' }, '尚无服务记录。');
  const rows = months.map((m) => h('tr', { 'data-month': m.month },
    h('th', { scope: 'row' }, m.month),
    h('td', { class: 'n minutes' }, num(m.minutes)),
    h('td', { class: 'n' }, hours(m.minutes)),
    h('td', { class: 'n records' }, m.records || 0)));
  return table('服务时长（按月）', ['月份', '分钟', '小时', '服务记录'], rows, { class: 'service' });
}

const commissioner = {
  title: '特派员',
  async load(ctx) {
    const detail = await getJson(`/v1/commissioners/${encodeURIComponent(ctx.id)}`, ctx.params);
    return { detail };
  },
  render({ detail: c }, ctx) {
    const monthList = span(c.posts, c.on_date);
    const load = monthlyPeak(c.posts.filter((p) => p.status !== 'ENDED' || p.end_date >= p.start_date), monthList, (p) => p.hours_per_month);
    return [
      h('h1', {}, c.name, ' ', badge(c.status)),
      h('dl', { class: 'facts' },
        h('dt', {}, '户籍城市'), h('dd', {}, cityName(c.home_city)),
        h('dt', {}, '单位'), h('dd', {}, `${c.employer}（${word(c.kind)}）`),
        h('dt', {}, '专长'), h('dd', {}, c.expertise.join('、') || '—')),
      h('div', { class: 'stats' },
        stat(`${c.on_date} 在岗岗位`, c.active_posts, { 'data-total': 'posts' }),
        stat('每月小时 / 上限', `${c.active_hours_per_month} / ${HOURS_LIMIT}`, { 'data-total': 'hours' }),
        stat('累计服务（分钟）', num(c.service_minutes), { 'data-total': 'minutes' })),
      h('section', { class: 'card' }, h('h2', {}, '岗位时间线'),
        timelineOf(ctx, c.posts, c.on_date, (p) => link(ctx, `/workstation/${p.workstation_id}`), (p) => `${p.role} · ${p.workstation_name}`)),
      h('section', { class: 'card' }, h('h2', {}, '每月工作量与 80 小时上限'),
        load.length ? monthBars(load, HOURS_LIMIT, ctx.width, '小时', '每月工作量') : h('p', { class: 'empty' }, '尚无岗位。'),
        h('p', { class: 'legend' }, '每月取任一日同时在任岗位的小时数之和的最大值；上限为默认政策的 80 小时。')),
      c.posts.length ? table('岗位', ASSIGNMENT_HEAD, c.posts.map((a) => assignmentRow(ctx, a)), { class: 'assignments' }) : null,
      serviceByMonth(c.service_by_month),
    ];
  },
};

const workstation = {
  title: '工作站',
  async load(ctx) {
    const detail = await getJson(`/v1/workstations/${encodeURIComponent(ctx.id)}`, ctx.params);
    return { detail };
  },
  render({ detail: w }, ctx) {
    const monthList = span(w.posts, w.on_date);
    const seats = monthlyPeak(w.posts, monthList, () => 1);
    return [
      h('h1', {}, w.name, ' ', badge(w.status)),
      h('dl', { class: 'facts' },
        h('dt', {}, '依托单位'), h('dd', {}, w.host_org),
        h('dt', {}, '所在城市'), h('dd', {}, cityName(w.host_city)),
        h('dt', {}, '服务城市'), h('dd', {}, w.served_cities.map(cityName).join('、') || '—'),
        h('dt', {}, '领域'), h('dd', {}, w.fields.join('、') || '—')),
      h('div', { class: 'stats' },
        stat(`${w.on_date} 在岗 / 容量`, `${w.active_posts} / ${w.capacity}`, { 'data-total': 'posts' }),
        stat('每月服务小时', w.active_hours_per_month, { 'data-total': 'hours' }),
        stat('累计服务（分钟）', num(w.service_minutes), { 'data-total': 'minutes' })),
      h('section', { class: 'card' }, h('h2', {}, '岗位数与容量'),
        seats.length ? monthBars(seats, w.capacity, ctx.width, '人', '每月岗位数与容量') : h('p', { class: 'empty' }, '尚无岗位。'),
        h('p', { class: 'legend' }, '每月取任一日同时在任的岗位数的最大值。')),
      h('section', { class: 'card' }, h('h2', {}, '岗位时间线'),
        timelineOf(ctx, w.posts, w.on_date, (p) => link(ctx, `/commissioner/${p.commissioner_id}`), (p) => `${p.commissioner_name} · ${p.role}`)),
      w.posts.length ? table('岗位', ASSIGNMENT_HEAD, w.posts.map((a) => assignmentRow(ctx, a)), { class: 'assignments' }) : null,
      serviceByMonth(w.service_by_month),
    ];
  },
};

const DEMAND_STATUSES = [['open', 'DEMAND_OPEN'], ['dispatched', 'DEMAND_DISPATCHED'], ['resolved', 'DEMAND_RESOLVED'], ['withdrawn', 'DEMAND_WITHDRAWN']];

const demands = {
  title: '需求对接',
  async load(ctx) {
    return getJson('/v1/demands', without(ctx.params, 'on_date'));
  },
  render(page, ctx) {
    const p = ctx.params;
    const columns = DEMAND_STATUSES.filter(([key]) => !p.status || p.status === key);
    return [
      h('h1', {}, '需求对接'),
      filterForm(ctx, '/demands', [
        select('city', '城市', CITY_OPTIONS, p.city),
        select('status', '状态', [['', '全部'], ...DEMAND_STATUSES.map(([key, code]) => [key, word(code)])], p.status),
      ], TIME.reduce((o, k) => (p[k] ? { ...o, [k]: p[k] } : o), {})),
      h('div', { class: 'board' }, columns.map(([key, code]) => {
        const items = page.demands.filter((d) => d.status === code);
        return h('section', { class: 'column', 'data-status': key },
          h('h2', {}, word(code), h('span', { class: 'count' }, items.length)),
          items.map((d) => {
            const inTerm = d.start_date <= ctx.onDate && ctx.onDate <= d.end_date;
            return h('article', { class: 'demand', 'data-demand': d.demand_id },
              h('h3', {}, h('a', { href: link(ctx, `/demand/${d.demand_id}`) }, d.title)),
              h('p', {}, `${d.enterprise} · ${cityName(d.city)}`),
              h('p', { class: 'muted' }, `${d.expertise.join('、')} · ${d.hours_per_month} 时/月`),
              h('p', { class: 'muted' }, `${d.start_date} 至 ${d.end_date}`, inTerm ? h('span', { class: 'badge b-active' }, '在期') : null),
              h('p', { class: 'muted' }, `服务 ${num(d.service_minutes)} 分钟`, d.satisfaction ? ` · 满意度 ${d.satisfaction}/5` : ''));
          }),
          items.length ? null : h('p', { class: 'empty' }, '无'));
      })),
      pager(ctx, '/demands', p, page.next_page_token),
    ];
  },
};

const demand = {
  title: '需求',
  async load(ctx) {
    const params = without(ctx.params, 'on_date');
    const id = encodeURIComponent(ctx.id);
    const [detail, candidates] = await Promise.all([
      getJson(`/v1/demands/${id}`, params),
      getJson(`/v1/demands/${id}/candidates`, params),
    ]);
    return { detail, candidates };
  },
  render({ detail: d, candidates }, ctx) {
    const rows = candidates.candidates.map((c) => h('tr', { 'data-candidate': c.commissioner_id },
      h('td', {}, h('a', { href: link(ctx, `/commissioner/${c.commissioner_id}`), class: 'commissioner' }, c.name)),
      h('td', {}, cityName(c.home_city)),
      h('td', {}, c.employer),
      h('td', {}, c.matched_expertise.join('、')),
      h('td', {}, c.cross_city ? h('span', { class: 'badge b-cross' }, '跨市') : '本市'),
      h('td', { class: 'n' }, c.peak_hours_per_month),
      h('td', { class: 'n spare' }, c.spare_hours_per_month),
      h('td', { class: 'n' }, c.demands_resolved ? c.average_satisfaction.toFixed(1) : '—'),
      h('td', {}, c.workstations.map((w, k) => [k ? '、' : '', h('a', { href: link(ctx, `/workstation/${w.workstation_id}`) }, `${w.name}（空位 ${w.free_seats}）`)]))));
    return [
      h('p', { class: 'crumbs' }, h('a', { href: link(ctx, '/demands') }, '« 需求对接')),
      h('h1', {}, d.title, ' ', badge(d.status)),
      h('dl', { class: 'facts' },
        h('dt', {}, '企业'), h('dd', {}, `${d.enterprise} · ${cityName(d.city)}`),
        h('dt', {}, '所需专长'), h('dd', {}, d.expertise.join('、')),
        h('dt', {}, '工作量'), h('dd', {}, `${d.hours_per_month} 小时/月，${d.start_date} 至 ${d.end_date}`),
        h('dt', {}, '描述'), h('dd', {}, d.description || '—'),
        d.outcome ? [h('dt', {}, '结果'), h('dd', {}, `${d.outcome}（${d.resolved_on}，满意度 ${d.satisfaction}/5）`)] : null,
        d.withdrawal_reason ? [h('dt', {}, '撤回原因'), h('dd', {}, d.withdrawal_reason)] : null,
        h('dt', {}, '服务时长'), h('dd', {}, `${num(d.service_minutes)} 分钟`)),
      d.posts.length ? table('已派驻岗位', ASSIGNMENT_HEAD, d.posts.map((a) => assignmentRow(ctx, a)), { class: 'assignments' }) : null,
      rows.length
        ? table('候选特派员', ['特派员', '户籍', '单位', '匹配专长', '跨市', '峰值小时/月', '余量小时/月', '平均满意度', '可派驻工作站'], rows, { class: 'candidates' })
        : h('p', { class: 'empty' }, '暂无符合条件的候选特派员。'),
    ];
  },
};

const assessment = {
  title: '年度考核',
  async load(ctx) {
    const params = without(ctx.params, 'on_date');
    if (!params.year) params.year = ctx.onDate.slice(0, 4);
    const page = await getJson('/v1/assessment', params);
    return { page, params };
  },
  render({ page, params }, ctx) {
    const p = ctx.params;
    const workstations = (params.subject || '').toLowerCase() === 'workstations';
    const grades = ['EXCELLENT', 'GOOD', 'PASS', 'FAIL'];
    const rows = page.rows.map((r) => h('tr', { 'data-subject': r.subject_id },
      h('td', {}, h('a', { href: link(ctx, `/${workstations ? 'workstation' : 'commissioner'}/${r.subject_id}`), class: 'name' }, r.name)),
      h('td', {}, cityName(r.city)),
      h('td', { class: 'n' }, r.service_days),
      h('td', { class: 'n' }, r.service_records),
      h('td', { class: 'n minutes' }, num(r.service_minutes)),
      h('td', { class: 'n' }, num(r.cross_city_minutes)),
      h('td', { class: 'n' }, r.demands_resolved),
      h('td', { class: 'n' }, r.demands_resolved ? r.average_satisfaction.toFixed(2) : '—'),
      h('td', { class: 'n' }, r.posts_held),
      h('td', { class: 'n points' }, r.points),
      h('td', {}, badge(r.grade))));
    const csv = without(params, 'page_size', 'page_token');
    return [
      h('h1', {}, `${page.year} 年度考核`),
      filterForm(ctx, '/assessment', [
        h('label', { class: 'field' }, '年度', h('input', { type: 'number', name: 'year', value: params.year, min: 2000, max: 2100, inputmode: 'numeric' })),
        select('subject', '对象', [['', '特派员'], ['workstations', '工作站']], p.subject),
        select('city', '城市', CITY_OPTIONS, p.city),
      ], TIME.reduce((o, k) => (p[k] ? { ...o, [k]: p[k] } : o), {})),
      h('div', { class: 'stats' }, grades.map((g) => stat(word(g), page.rows.filter((r) => r.grade === g).length, { 'data-grade': g }))),
      h('p', { class: 'toolbar' },
        h('span', {}, `本页 ${page.rows.length} 条 · ${page.city ? cityName(page.city) : '两市'} · 事件位置 ${page.as_of_position}`),
        h('a', { href: withParams('/v1/assessment.csv', csv), class: 'button secondary', download: `assessment-${page.year}.csv` }, '下载 CSV')),
      page.rows.length ? h('section', { class: 'card' }, h('h2', {}, '得分'),
        rankBars(page.rows.slice(0, 15), ctx.width, (r) => r.name, (r) => r.points, '得分排行')) : null,
      rows.length
        ? table('考核结果', [workstations ? '工作站' : '特派员', '城市', '服务天数', '服务记录', '服务分钟', '跨市分钟', '解决需求', '平均满意度', '岗位', '得分', '等级'], rows, { class: 'assessment' })
        : h('p', { class: 'empty' }, '该年度没有考核数据。'),
      pager(ctx, '/assessment', p, page.next_page_token),
    ];
  },
};

/** The pages by the first segment of the route. */
export const PAGES = { '': overview, assignments, commissioner, workstation, demands, demand, assessment };

/** The error the API answered, as the page. */
export function errorPage(error) {
  return [h('div', { class: 'error', role: 'alert' },
    h('h1', {}, '无法显示此页'),
    h('p', {}, '查询服务的回答：'),
    h('p', {}, h('code', { class: 'code' }, error.code || 'ERROR'), ' ', h('span', { class: 'message' }, error.message)),
    h('p', {}, h('a', { href: '#/' }, '回到总览')))];
}

