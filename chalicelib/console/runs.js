// Runs: every job's runs, newest first, filtered; live while one is Waiting or Executing. A run's detail.
import { get, post } from './api.js';
import { badge, clear, confirmed, errorBox, fields, h, json, loading, notice, section, table, time } from './dom.js';
import { filterForm, utc } from './forms.js';

const LIVE = new Set(['Waiting', 'Executing', 'Cancelling']);
const STATUSES = ['Waiting', 'Executing', 'Ended', 'Error', 'Canceled', 'Cancelling', 'NotRun'];
const TRIGGERS = ['manual', 'schedule', 'event'];
const REFRESH_MS = 2000;

function counters(run) {
  const c = run.counters || {};
  return `${c.read ?? 0} read · ${c.written ?? 0} written · ${c.skipped ?? 0} skipped · ${c.failed ?? 0} failed`;
}

export function who(run) {
  return run.requested_by_label || run.requested_by || '—';
}

export function runLink(run) {
  return h('a', { href: `#/runs/${encodeURIComponent(run.run_id)}`, title: run.run_id }, h('code', {}, run.run_id));
}

export function runsTable(runs, empty = 'No runs yet.') {
  return table([
    ['Run', runLink],
    ['Job', (run) => run.job],
    ['Status', (run) => [badge(run.status), run.dry_run ? [' ', h('span', { class: 'badge muted' }, 'dry run')] : null]],
    ['Trigger', (run) => run.trigger],
    ['Requested by', who],
    ['Created', (run) => time(run.created_at)],
    ['Ended', (run) => time(run.ended_at)],
    ['Records', counters],
    ['Message', (run) => run.message || ''],
  ], runs, empty);
}

export async function runsView(main, { query }, context) {
  const { jobs } = await get('/jobs');
  const filters = filterForm('runs', [
    { name: 'job', label: 'Job', options: jobs.map((job) => [job.name, job.title]) },
    { name: 'status', label: 'Status', options: STATUSES },
    { name: 'trigger', label: 'Trigger', options: TRIGGERS },
    { name: 'since', label: 'Since (UTC)', type: 'datetime-local' },
    { name: 'until', label: 'Until (UTC)', type: 'datetime-local' },
  ], query);
  const list = h('div', {}, loading());
  clear(main, h('h1', {}, 'Runs'), filters, list);
  const params = { job: query.job, status: query.status, trigger: query.trigger, since: utc(query.since),
    until: utc(query.until), limit: 50 };
  const load = async () => {
    if (!context.alive()) return;
    let answer;
    try {
      answer = await get('/runs', params);
    } catch (error) {
      clear(list, errorBox(error));
      return;
    }
    if (!context.alive()) return;
    const live = answer.runs.some((run) => LIVE.has(run.status));
    clear(list, live ? notice('Refreshing while a run is waiting or executing…') : null, runsTable(answer.runs));
    if (live) window.setTimeout(load, REFRESH_MS);
  };
  await load();
}

export function outputCell(run, output, index) {
  if (output.kind === 'session') {
    return h('a', { href: `#/sessions?session_id=${encodeURIComponent(output.id)}` }, `download session ${output.id}`);
  }
  const place = h('span', {});
  const button = h('button', { type: 'button', class: 'small', onclick: async () => {
    try {
      const link = await get(`/runs/${encodeURIComponent(run.run_id)}/outputs/${index}`);
      clear(place, h('a', { href: link.url, target: '_blank', rel: 'noopener noreferrer', download: '' }, 'Download'),
        ' ', h('small', { class: 'muted' }, 'link valid until '), time(link.expires_at));
    } catch (error) {
      clear(place, errorBox(error));
    }
  } }, 'Get download link');
  clear(place, button);
  return [h('code', {}, output.key || output.id || JSON.stringify(output)), ' ', place];
}

export async function runView(main, { id }, context) {
  const problem = h('div', {}); // kept while the view refreshes
  const load = async () => {
    if (!context.alive()) return;
    const run = await get(`/runs/${encodeURIComponent(id)}`);
    if (!context.alive()) return;
    const cancel = LIVE.has(run.status) && run.status !== 'Cancelling'
      ? h('button', { type: 'button', class: 'danger', onclick: async () => {
        if (!confirmed(`Cancel run ${run.run_id} of ${run.job}? It stops at its next page.`)) return;
        try {
          await post(`/runs/${encodeURIComponent(run.run_id)}/cancel`);
          clear(problem);
          load();
        } catch (error) {
          clear(problem, errorBox(error));
        }
      } }, 'Cancel run') : null;
    const requests = Object.entries(run.aws_requests || {}).sort((a, b) => b[1] - a[1]);
    clear(main,
      h('p', {}, h('a', { href: `#/runs?job=${encodeURIComponent(run.job)}` }, `← runs of ${run.job}`)),
      h('h1', {}, `${run.job} `, badge(run.status), run.dry_run ? [' ', h('span', { class: 'badge muted' }, 'dry run')] : null),
      LIVE.has(run.status) ? notice('Refreshing while the run is waiting or executing…') : null,
      problem,
      fields([
        ['Run', h('code', {}, run.run_id)],
        ['Trigger', run.trigger],
        ['Requested by', who(run)],
        ['Created', time(run.created_at)],
        ['Started', time(run.started_at)],
        ['Ended', time(run.ended_at)],
        ['Parameters', json(run.params || {})],
        ['Message', run.message || '—'],
        run.parent_run_id ? ['Parent run', h('a', { href: `#/runs/${encodeURIComponent(run.parent_run_id)}` },
          run.parent_run_id)] : null,
      ]),
      cancel ? h('div', { class: 'actions' }, cancel) : null,
      section('Records', table([['Read', (c) => c.read], ['Written', (c) => c.written], ['Skipped', (c) => c.skipped],
        ['Failed', (c) => c.failed]], [run.counters || {}], '')),
      run.shards ? section(`Shard runs (${run.shards.length})`, table([
        ['Run', runLink], ['Scope', (shard) => (Array.isArray(shard.scope) ? shard.scope.join(', ')
          : typeof shard.scope === 'object' && shard.scope !== null ? JSON.stringify(shard.scope) : shard.scope ?? '')],
        ['Status', (shard) => badge(shard.status)], ['Ended', (shard) => time(shard.ended_at)],
      ], run.shards, 'No shard runs.')) : null,
      section(`Errors (${(run.errors || []).length})`, table([
        ['Record', (e) => (e.key === undefined ? '' : String(e.key))], ['Message', (e) => e.message || JSON.stringify(e)],
      ], run.errors || [], 'No errors.')),
      section(`Warnings (${(run.warnings || []).length})`, table([
        ['Warning', (w) => (typeof w === 'string' ? w : w.message || JSON.stringify(w))],
      ], run.warnings || [], 'No warnings.')),
      section(`Outputs (${(run.outputs || []).length})`, table([
        ['Kind', (o) => o.kind], ['Output', (o) => outputCell(run, o, run.outputs.indexOf(o))],
      ], run.outputs || [], 'No outputs.')),
      section('AWS requests', run.estimated_cost_usd !== undefined && run.estimated_cost_usd !== null
        ? h('p', {}, 'Estimated cost: ', h('strong', {}, `$${run.estimated_cost_usd}`)) : null,
      table([['Request', ([name]) => h('code', {}, name)], ['Count', ([, count]) => count]], requests,
        'No AWS requests recorded.')));
    if (LIVE.has(run.status)) window.setTimeout(() => load().catch((error) => {
      if (context.alive()) clear(main, errorBox(error));
    }), REFRESH_MS);
  };
  await load();
}
