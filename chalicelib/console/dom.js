// DOM helpers: every value becomes a text node or an attribute, never HTML.

export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else if (name === 'class') node.className = value;
    else if (name === 'checked' || name === 'value' || name === 'disabled' || name === 'selected') node[name] = value;
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

// A time in UTC, its ISO value on hover.
export function time(iso) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return h('span', {}, iso);
  const shown = when.toISOString().slice(0, 16).replace('T', ' ') + ' UTC';
  return h('time', { datetime: iso, title: iso }, shown);
}

export function badge(status) {
  if (!status) return h('span', { class: 'muted' }, '—');
  const tone = {
    Ended: 'ok', Applied: 'ok', Downloaded: 'ok', Published: 'ok', approved: 'ok', transferred: 'ok', Copied: 'ok',
    Accepted: 'ok', Staged: 'info', Available: 'info', Requested: 'info', Started: 'info', InProgress: 'info',
    Waiting: 'info', Executing: 'run', Cancelling: 'run', Draft: 'draft', pending: 'warn', Open: 'warn',
    conflict: 'warn', CompletedWithErrors: 'warn', Completed: 'ok', NoData: 'muted', NotRun: 'muted',
    Canceled: 'muted', Expired: 'muted', Cleaned: 'muted',
  }[status] || (/fail|error|suspend|reject/i.test(status) ? 'bad' : 'muted');
  return h('span', { class: `badge ${tone}` }, status);
}

// columns: [[label, row => cell]]; an empty list shows `empty`.
export function table(columns, rows, empty, rowAttrs) {
  if (!rows.length) return h('p', { class: 'empty' }, empty);
  return h('table', {},
    h('thead', {}, h('tr', {}, columns.map(([label]) => h('th', { scope: 'col' }, label)))),
    h('tbody', {}, rows.map((row) => h('tr', rowAttrs ? rowAttrs(row) : {},
      columns.map(([, cell]) => h('td', {}, cell(row)))))));
}

// An API error: its message and each field's detail, as text.
export function errorBox(error) {
  const details = (error && error.details) || [];
  return h('div', { class: 'error', role: 'alert' },
    h('strong', {}, error && error.message ? error.message : String(error)),
    details.length ? h('ul', {}, details.map((d) => h('li', {}, h('code', {}, d.field), ': ', d.message))) : null);
}

export function loading() {
  return h('p', { class: 'muted' }, 'Loading…');
}

export function notice(text) {
  return h('div', { class: 'notice', role: 'status' }, text);
}

export function fields(pairs) {
  return h('dl', { class: 'fields' }, pairs.filter(Boolean).map(([label, value]) => [h('dt', {}, label), h('dd', {}, value)]));
}

export function section(title, ...children) {
  return h('section', { class: 'panel' }, h('h2', {}, title), children);
}

export function shortId(id) {
  return id && id.length > 14 ? id.slice(0, 14) + '…' : id;
}

export function json(value) {
  return h('code', { class: 'json' }, JSON.stringify(value));
}

// True when the operator confirms `question` (the browser's own dialog); every destructive action asks.
export function confirmed(question) {
  return window.confirm(question);
}
