// Migration (staging jobs, row errors, mapping; copy to target) and Uploads (conflicts, rejections; accept).
import { get, post } from './api.js';
import { badge, clear, confirmed, errorBox, fields, h, json, loading, notice, section, shortId, table, time } from './dom.js';
import { filterForm, storeChoices } from './forms.js';

const ENTITIES = ['stores', 'customers', 'workers', 'categories', 'products', 'inventory'];

export async function migrationView(main, { query }) {
  const { jobs } = await get('/migration/jobs', { entity: query.entity, limit: 100 });
  clear(main, h('h1', {}, 'Migration'),
    h('p', { class: 'muted' }, 'RMS exports dropped in the migration bucket are staged here, each row validated; ' +
      'open a staging job to see its row errors and copy its valid rows to the live data.'),
    filterForm('migration', [{ name: 'entity', label: 'Entity', options: ENTITIES }], query),
    table([
      ['Staging job', (j) => h('a', { href: `#/migration/${encodeURIComponent(j.job_id)}` }, j.job_id)],
      ['Entity', (j) => j.entity],
      ['File', (j) => h('code', {}, j.source_key || '')],
      ['Status', (j) => badge(j.status)],
      ['Rows', (j) => j.rows],
      ['Row errors', (j) => (j.errors ? h('span', { class: 'badge bad' }, String(j.errors)) : '0')],
      ['Copied', (j) => `${j.copied}${j.copy_failed ? ` (${j.copy_failed} failed)` : ''}`],
      ['Created', (j) => time(j.created_at)],
    ], jobs, 'No staging jobs yet: drop an RMS export in the migration bucket.'));
}

export async function stagingJobView(main, { id }) {
  const show = async (message) => {
    const job = await get(`/migration/jobs/${encodeURIComponent(id)}`);
    const copy = (rows) => async () => {
      const what = rows === 'all' ? `all ${job.valid_rows} valid rows` : `the ${job.copy_failed} rows that failed the last copy`;
      if (!confirmed(`Copy ${what} of ${job.job_id} to the live ${job.entity}?`)) return;
      try {
        const answer = await post(`/migration/jobs/${encodeURIComponent(job.job_id)}/copy-to-target`, { rows });
        await show(h('div', { class: 'notice', role: 'status' }, 'Copy started: ',
          h('a', { href: `#/runs/${encodeURIComponent(answer.run.run_id)}` }, `run ${answer.run.run_id}`),
          ` (${answer.run.status}).`));
      } catch (error) {
        await show(errorBox(error));
      }
    };
    const mapping = Object.entries(job.mapping || {});
    clear(main,
      h('p', {}, h('a', { href: '#/migration' }, '← staging jobs')),
      h('h1', {}, `Staging job ${job.job_id} `, badge(job.status)),
      message,
      fields([
        ['Entity', job.entity], ['File', h('code', {}, `${job.bucket}/${job.source_key}`)],
        ['Rows', `${job.rows} (${job.valid_rows} valid, ${job.errors} with errors)`],
        ['Copied', `${job.copied} rows, ${job.copy_failed} failed`], ['Copied at', time(job.copied_at)],
        ['Created', time(job.created_at)], ['Message', job.message || '—'],
        job.copy_run_id ? ['Last copy run', h('a', { href: `#/runs/${encodeURIComponent(job.copy_run_id)}` }, job.copy_run_id)] : null,
      ]),
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'primary', onclick: copy('all') }, 'Copy to target: all valid rows'),
        h('button', { type: 'button', onclick: copy('errors'), disabled: !job.copy_failed }, 'Copy to target: failed rows only')),
      section(`Row errors (sample of ${job.errors})`, table([
        ['Row', (e) => e.row ?? ''],
        ['Problems', (e) => (e.errors ? h('ul', {}, e.errors.map((x) => h('li', {},
          h('code', {}, x.column || x.field || ''), ': ', x.message))) : json(e))],
      ], job.sample_errors || [], 'No row errors.')),
      section(`Mapping in use${job.mapping_version ? ` (version ${job.mapping_version})` : ''}`, table([
        ['Field', ([name]) => h('code', {}, name)],
        ['From', ([, source]) => (typeof source === 'string' ? source : json(source))],
      ], mapping, 'No mapping recorded.')));
  };
  await show(null);
}

export async function uploadsView(main, { query }) {
  const stores = await storeChoices();
  const storeId = query.store_id || (stores[0] && stores[0][0]);
  const filters = filterForm('uploads', [
    { name: 'store_id', label: 'Store', options: stores, required: true },
    { name: 'kind', label: 'Kind', options: [['conflict', 'conflicts'], ['rejected', 'rejections']] },
  ], { ...query, store_id: storeId });
  const result = h('div', {}, loading());
  clear(main, h('h1', {}, 'Uploads'),
    h('p', { class: 'muted' }, 'Transactions a store uploaded that were refused (rejections) or that differ from the version ' +
      'already stored (conflicts), the last 30 days. Accepting a conflict replaces the stored version while it is unposted.'),
    filters, result);
  if (!storeId) return;
  const show = async (message) => {
    const { issues } = await get(`/stores/${encodeURIComponent(storeId)}/upload-issues`, { kind: query.kind, limit: 100 });
    clear(result, message, table([
      ['Issue', (i) => h('code', { title: i.issue_id }, shortId(i.issue_id))],
      ['Kind', (i) => badge(i.kind)],
      ['Transaction', (i) => i.transaction_id || '—'],
      ['Status', (i) => badge(i.status)],
      ['Last seen', (i) => time(i.seen_at)],
      ['Problem', (i) => [i.message || '', (i.errors || []).length
        ? h('ul', {}, i.errors.map((e) => h('li', {}, h('code', {}, e.field || ''), ' ', e.message || ''))) : null]],
      ['Record', (i) => h('details', {}, h('summary', {}, 'show'), json(i.record))],
      ['', (i) => (i.kind === 'conflict' && i.status === 'Open' ? h('button', { type: 'button', class: 'small primary',
        onclick: async () => {
          if (!confirmed(`Accept the uploaded version of transaction ${i.transaction_id}? It replaces the stored one.`)) return;
          try {
            await post(`/stores/${encodeURIComponent(storeId)}/upload-issues/${encodeURIComponent(i.issue_id)}/accept`);
            await show(notice(`Accepted the new version of ${i.transaction_id}.`));
          } catch (error) {
            await show(errorBox(error));
          }
        } }, 'Accept this version') : null)],
    ], issues, 'No conflicts or rejections for this store in the last 30 days.'));
  };
  await show(null);
}
