// Assortments (publish a Draft) and Statements and stock (statements with totals; on-hand).
import { get, post } from './api.js';
import { badge, clear, confirmed, errorBox, h, loading, section, table, time } from './dom.js';
import { filterForm, storeChoices } from './forms.js';

function channels(assortment) {
  return (assortment.channel_lines || []).map((line) => (line.store_id ? `store ${line.store_id}`
    : `org node ${line.org_node_id}`)).join(', ') || '—';
}

export async function assortmentsView(main) {
  const show = async (message) => {
    const { items } = await get('/data/assortments', { limit: 1000 });
    clear(main, h('h1', {}, 'Assortments'),
      h('p', { class: 'muted' }, 'Publishing a Draft assortment sends its products to the stores of its channels.'),
      message,
      table([
        ['Assortment', (a) => [h('strong', {}, a.name || a.id), h('br'), h('small', { class: 'muted' }, a.id)]],
        ['Status', (a) => badge(a.status)],
        ['Valid', (a) => `${a.valid_from || '—'} → ${a.valid_to || 'open-ended'}`],
        ['Channels', channels],
        ['Products', (a) => (a.product_lines || []).length],
        ['', (a) => (a.status === 'Draft' ? h('button', { type: 'button', class: 'primary small',
          onclick: () => publish(a) }, 'Publish') : null)],
      ], items, 'No assortments yet.'));
  };
  const publish = async (a) => {
    if (!confirmed(`Publish assortment ${a.name || a.id}? Its stores get its products from ${a.valid_from}.`)) return;
    try {
      const { run } = await post(`/assortments/${encodeURIComponent(a.id)}/publish`);
      await show(h('div', { class: 'notice', role: 'status' }, `Assortment ${a.id} published: `,
        h('a', { href: `#/runs/${encodeURIComponent(run.run_id)}` }, `run ${run.run_id}`), ` (${run.status}).`));
    } catch (error) {
      await show(errorBox(error));
    }
  };
  await show(null);
}

function totals(statement) {
  const shown = (value) => (typeof value === 'object' && value !== null
    ? Object.entries(value).map(([name, amount]) => `${name} ${amount}`).join(', ') || '—' : String(value));
  return Object.entries(statement.totals || {}).map(([name, value]) => h('span', { class: 'total' },
    h('small', {}, name), ' ', shown(value)));
}

export async function stockView(main, { query }) {
  const stores = await storeChoices();
  const storeId = query.store_id || (stores[0] && stores[0][0]);
  const filters = filterForm('stock', [
    { name: 'store_id', label: 'Store', options: stores, required: true },
    { name: 'business_date', label: 'Business date', type: 'date' },
    { name: 'product_id', label: 'Product (on-hand)', placeholder: 'all products' },
  ], { ...query, store_id: storeId });
  const wait = loading();
  clear(main, h('h1', {}, 'Statements and stock'), filters, wait);
  if (!storeId) return;
  const [statements, onHand] = await Promise.allSettled([
    get('/statements', { store_id: storeId, business_date: query.business_date, limit: 100 }),
    get('/inventory/on-hand', { store_id: storeId, product_id: query.product_id, limit: 200 }),
  ]);
  wait.remove();
  main.append(
    section(`Statements of store ${storeId}`, statements.status === 'rejected' ? errorBox(statements.reason) : table([
      ['Statement', (s) => h('code', {}, s.statement_id)],
      ['Business date', (s) => s.business_date],
      ['Status', (s) => badge(s.status)],
      ['Totals', totals],
      ['Posted', (s) => time(s.posted_at)],
    ], statements.value.statements, 'No statements yet for this store.')),
    section(`On hand at store ${storeId}`, onHand.status === 'rejected' ? errorBox(onHand.reason) : table([
      ['Product', (i) => i.product_id],
      ['Variant', (i) => i.variant_id || '—'],
      ['Warehouse', (i) => i.warehouse_id],
      ['Quantity', (i) => String(i.qty)],
    ], onHand.value.items, 'No stock recorded for this store.')));
}
