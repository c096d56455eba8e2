// Finance (account-activity results, reset export; payroll files) and Time registrations (approve).
import { get, post } from './api.js';
import { badge, clear, confirmed, errorBox, h, loading, notice, section, table, time } from './dom.js';
import { filterForm, storeChoices } from './forms.js';
import { outputCell, runLink } from './runs.js';

function cellText(value) {
  return value === null || value === undefined ? '' : typeof value === 'object' ? JSON.stringify(value) : String(value);
}

function lines(result) {
  const rows = result.lines || [];
  if (!rows.length) return h('span', { class: 'muted' }, 'no lines');
  const header = Object.keys(rows[0]);
  return h('details', {}, h('summary', {}, `${rows.length} line${rows.length === 1 ? '' : 's'}`),
    table(header.map((name) => [name, (row) => cellText(row[name])]), rows, ''));
}

export async function financeView(main, { query }) {
  const [{ items: profiles }, payroll] = await Promise.all([
    get('/data/account-export-profiles', { limit: 1000 }),
    get('/jobs/transfer-to-pay/runs', { limit: 20 }),
  ]);
  const profileId = query.profile_id || (profiles[0] && profiles[0].id);
  const results = h('div', {}, loading());
  clear(main, h('h1', {}, 'Finance'),
    section('Account activity',
      filterForm('finance', [{ name: 'profile_id', label: 'Export profile', required: true,
        options: profiles.map((p) => [p.id, p.name ? `${p.id} — ${p.name}` : p.id]) }], { profile_id: profileId }),
      results),
    section('Payroll files (transfer to pay)', payrollFiles(payroll.runs)));
  if (!profileId) {
    clear(results, h('p', { class: 'empty' }, 'No account export profiles yet.'));
    return;
  }
  const show = async (message) => {
    const answer = await get('/account-activity', { profile_id: profileId, limit: 50 });
    clear(results, message, table([
      ['Result', (r) => h('code', {}, r.result_id)],
      ['Days', (r) => `${r.from_date} → ${r.to_date}`],
      ['Kind', (r) => [r.adjustment ? h('span', { class: 'badge warn' }, 'adjustment') : null,
        r.restatement ? h('span', { class: 'badge info' }, 'restatement') : null,
        !r.adjustment && !r.restatement ? 'regular' : null]],
      ['Lines', lines],
      ['Exported', (r) => (r.exported ? [badge('Exported'), ' ', time(r.exported_at), h('br'),
        h('small', { class: 'muted' }, r.export_key || '')] : h('span', { class: 'muted' }, 'not yet'))],
      ['Warning', (r) => r.warning || ''],
      ['', (r) => (r.exported ? h('button', { type: 'button', class: 'small danger', onclick: async () => {
        if (!confirmed(`Reset the export of ${r.result_id}? The next export run writes its file again.`)) return;
        try {
          await post(`/account-activity/${encodeURIComponent(r.result_id)}/reset-export`);
          await show(notice(`${r.result_id} will be exported again by the next export run.`));
        } catch (error) {
          await show(errorBox(error));
        }
      } }, 'Reset export') : null)],
    ], answer.results, 'No results yet for this profile.'));
  };
  await show(null);
}

function payrollFiles(runs) {
  const files = runs.flatMap((run) => (run.outputs || []).map((output, index) => ({ run, output, index })))
    .filter(({ output }) => output.kind !== 'session');
  return table([
    ['Run', ({ run }) => runLink(run)],
    ['Created', ({ run }) => time(run.created_at)],
    ['File', ({ run, output, index }) => outputCell(run, output, index)],
  ], files, 'No payroll files yet: transfer to pay has not written any.');
}

function isoDay(date) {
  return date.toISOString().slice(0, 10);
}

export async function registrationsView(main, { query }) {
  const stores = await storeChoices();
  const today = new Date();
  const chosen = {
    store_id: query.store_id || (stores[0] && stores[0][0]),
    from: query.from || isoDay(new Date(today.getTime() - 27 * 86400000)),
    to: query.to || isoDay(today),
    status: query.status || 'pending',
  };
  const filters = filterForm('time-registrations', [
    { name: 'store_id', label: 'Store', options: stores, required: true },
    { name: 'from', label: 'From', type: 'date', required: true },
    { name: 'to', label: 'To', type: 'date', required: true },
    { name: 'status', label: 'Status', required: true, options: ['pending', 'approved', 'transferred', ['all', 'all statuses']] },
  ], chosen);
  const result = h('div', {}, loading());
  clear(main, h('h1', {}, 'Time registrations'), filters, result);
  if (!chosen.store_id) return;
  const show = async (message) => {
    const answer = await get('/time-registrations', { ...chosen, status: chosen.status === 'all' ? undefined : chosen.status, limit: 500 });
    const workers = new Map();
    for (const item of answer.items) {
      if (!workers.has(item.worker_id)) workers.set(item.worker_id, []);
      workers.get(item.worker_id).push(item);
    }
    const rows = [...workers].map(([workerId, items]) => ({ workerId, items }));
    const boxes = new Map(rows.map((row) => [row.workerId, h('input', { type: 'checkbox', 'aria-label': `select worker ${row.workerId}` })]));
    const approve = async (body, question) => {
      if (!confirmed(question)) return;
      try {
        const outcome = await post('/time-registrations/approve', { ...body, from: chosen.from, to: chosen.to });
        await show(h('div', { class: 'notice', role: 'status' },
          `Approved ${outcome.approved}; ${outcome.already_approved} were approved already.`,
          outcome.not_approved.length ? h('ul', {}, outcome.not_approved.map((n) => h('li', {},
            `${n.worker_id} ${n.registration_id}: ${n.reason}`))) : null));
      } catch (error) {
        await show(errorBox(error));
      }
    };
    const pending = answer.items.some((item) => item.status === 'pending');
    clear(result, message,
      h('p', { class: 'muted' }, `${chosen.from} → ${chosen.to}, the store's local days.`),
      table([
        ['', (row) => boxes.get(row.workerId)],
        ['Worker', (row) => h('strong', {}, row.workerId)],
        ['Registrations', (row) => h('details', {}, h('summary', {}, `${row.items.length}`), table([
          ['Day', (r) => r.work_date], ['In', (r) => time(r.clock_in)], ['Out', (r) => time(r.clock_out)],
          ['Hours', (r) => String(r.hours)], ['Status', (r) => badge(r.status)],
        ], row.items, ''))],
        ['Hours', (row) => row.items.reduce((sum, r) => sum + Number(r.hours || 0), 0).toFixed(2)],
        ['Days', (row) => `${row.items[0].work_date} → ${row.items[row.items.length - 1].work_date}`],
        ['Status', (row) => [...new Set(row.items.map((r) => r.status))].map((s) => badge(s))],
      ], rows, chosen.status === 'pending' ? 'Nothing pending approval for these days.' : 'No registrations for these days.'),
      answer.cursor ? h('p', { class: 'muted' }, 'Showing the first 500 registrations; narrow the days to see the rest.') : null,
      rows.length && pending ? h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'primary', onclick: () => {
          const workerIds = rows.filter((row) => boxes.get(row.workerId).checked).map((row) => row.workerId);
          if (!workerIds.length) {
            show(errorBox({ message: 'Select the workers to approve first.' }));
            return;
          }
          approve({ worker_ids: workerIds }, `Approve the registrations of ${workerIds.length} worker(s), ${chosen.from} → ${chosen.to}?`);
        } }, 'Approve selected workers'),
        h('button', { type: 'button', onclick: () => approve({ store_id: chosen.store_id },
          `Approve every pending registration of store ${chosen.store_id}, ${chosen.from} → ${chosen.to}?`) },
        `Approve all of store ${chosen.store_id}`)) : null);
  };
  await show(null);
}
