// Download sessions (the AX form): filter; cancel; rerun; preview a package's rows.
import { get, post } from './api.js';
import { badge, clear, confirmed, errorBox, fields, h, loading, notice, shortId, table, time } from './dom.js';
import { filterForm, storeChoices } from './forms.js';

const STATUSES = ['Started', 'Available', 'Requested', 'Downloaded', 'Applied', 'Canceled', 'CreateFailed',
  'DownloadFailed', 'ApplyFailed', 'NoData', 'Suspended'];
const CANCELABLE = new Set(['Available', 'Requested', 'Downloaded', 'Suspended', 'DownloadFailed',
  'ApplyFailed']);
const PREVIEW_ROWS = 50;

export async function sessionsView(main, { query }) {
  const filters = filterForm('sessions', [
    { name: 'store_id', label: 'Store', options: await storeChoices(), any: 'all stores' },
    { name: 'status', label: 'Status', options: STATUSES },
  ], query);
  const result = h('div', {}, loading());
  const preview = h('div', {});
  clear(main, h('h1', {}, 'Download sessions'), filters, result, preview);
  let sessions;
  let cursor = null;
  if (query.session_id) {
    sessions = [await get(`/download-sessions/${encodeURIComponent(query.session_id)}`)];
  } else {
    const answer = await get('/download-sessions', { store_id: query.store_id, status: query.status, limit: 100 });
    sessions = answer.sessions;
    cursor = answer.cursor;
  }
  const show = (message) => clear(result, message, table([
    ['Session', (s) => h('code', { title: s.session_id }, shortId(s.session_id))],
    ['Store', (s) => s.store_id],
    ['Data group', (s) => s.data_group],
    ['Seq', (s) => s.seq],
    ['Status', (s) => [badge(s.status), s.stale ? [' ', h('span', { class: 'badge bad' }, 'stale')] : null]],
    ['Tries', (s) => s.try_count],
    ['Rows', (s) => s.rows],
    ['Created', (s) => time(s.created_at)],
    ['Downloaded', (s) => time(s.downloaded_at)],
    ['Applied', (s) => time(s.applied_at)],
    ['Message', (s) => s.message || ''],
    ['', (s) => h('div', { class: 'actions' },
      s.package ? h('button', { type: 'button', class: 'small', onclick: () => showPreview(preview, s) }, 'Preview') : null,
      CANCELABLE.has(s.status) ? h('button', { type: 'button', class: 'small danger', onclick: () => act(s, 'cancel') },
        'Cancel') : null,
      h('button', { type: 'button', class: 'small', onclick: () => act(s, 'rerun') }, 'Rerun'))],
  ], sessions, 'No download sessions match.'),
  cursor ? h('p', { class: 'muted' }, 'Showing the first 100; narrow the filter to see others.') : null);

  async function act(s, action) {
    const question = action === 'cancel'
      ? `Cancel session ${s.session_id} (store ${s.store_id}, ${s.data_group} #${s.seq})? The store will not apply it.`
      : `Rerun ${s.data_group} for store ${s.store_id}? A full sync run sends it a new session.`;
    if (!confirmed(question)) return;
    try {
      const answer = await post(`/download-sessions/${encodeURIComponent(s.session_id)}/${action}`);
      if (action === 'cancel') {
        sessions = sessions.map((item) => (item.session_id === s.session_id ? answer : item));
        show(notice(`Session ${s.session_id} canceled.`));
      } else {
        show(h('div', { class: 'notice', role: 'status' }, 'Rerun started: ',
          h('a', { href: `#/runs/${encodeURIComponent(answer.run.run_id)}` }, `run ${answer.run.run_id}`),
          ` (${answer.run.status}).`));
      }
    } catch (error) {
      show(errorBox(error));
    }
  }
  show(null);
}

async function showPreview(panel, s) {
  clear(panel, h('p', { class: 'muted' }, 'Loading the package…'));
  try {
    const pkg = await get(`/download-sessions/${encodeURIComponent(s.session_id)}/package`, { limit: PREVIEW_ROWS });
    const columns = [...new Set(pkg.rows.flatMap((row) => Object.keys(row)))];
    const text = (value) => (value === null || value === undefined ? ''
      : typeof value === 'object' ? JSON.stringify(value) : String(value));
    clear(panel, h('section', { class: 'panel', 'aria-label': 'Package preview' },
      h('h2', {}, `Package of ${pkg.data_group} #${pkg.seq} for store ${pkg.store_id}`),
      fields(Object.entries(pkg.header || {}).map(([name, value]) => [name, text(value)])),
      h('p', { class: 'muted' }, `${pkg.rows.length} of ${pkg.total_rows} rows`),
      pkg.rows.length ? h('div', { class: 'scroll' }, h('table', {},
        h('thead', {}, h('tr', {}, columns.map((name) => h('th', { scope: 'col' }, name)))),
        h('tbody', {}, pkg.rows.map((row) => h('tr', {}, columns.map((name) => h('td', {}, text(row[name]))))))))
        : h('p', { class: 'empty' }, 'The package has no rows.')));
    panel.scrollIntoView({ block: 'nearest' });
  } catch (error) {
    clear(panel, errorBox(error));
  }
}
