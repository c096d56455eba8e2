// The console: sign-in, navigation (hash routes), the alerts banner, and the views.
import { api, ApiError, post, session } from './api.js';
import { assortmentsView, stockView } from './catalog.js';
import { clear, errorBox, h, loading, time } from './dom.js';
import { financeView, registrationsView } from './finance.js';
import { jobsView } from './jobs.js';
import { migrationView, stagingJobView, uploadsView } from './operations.js';
import { runsView, runView } from './runs.js';
import { sessionsView } from './sessions.js';

const VIEWS = [
  ['jobs', 'Jobs', jobsView],
  ['runs', 'Runs', runsView],
  ['sessions', 'Download sessions', sessionsView],
  ['assortments', 'Assortments', assortmentsView],
  ['stock', 'Statements and stock', stockView],
  ['finance', 'Finance', financeView],
  ['time-registrations', 'Time registrations', registrationsView],
  ['migration', 'Migration', migrationView],
  ['uploads', 'Uploads', uploadsView],
];
const DETAILS = { runs: runView, migration: stagingJobView };

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const signOutButton = document.getElementById('sign-out');
const banner = document.getElementById('alerts');
let shown = 0; // the view generation: a view's timers stop when another is shown
let alertsExpanded = false; // the alert list stays open while alerts are acknowledged

// '#/runs/ID?job=x' → {name: 'runs', id: 'ID', query: {job: 'x'}}
function route() {
  const [path, search] = window.location.hash.replace(/^#\/?/, '').split('?');
  const [name, ...rest] = path.split('/');
  return { name: name || 'jobs', id: rest.length ? decodeURIComponent(rest.join('/')) : null,
    query: Object.fromEntries(new URLSearchParams(search || '')) };
}

function showNav(active) {
  nav.hidden = false;
  signOutButton.hidden = false;
  clear(nav, VIEWS.map(([name, label]) => h('a', {
    href: `#/${name}`, 'aria-current': name === active ? 'page' : null,
  }, label)));
}

function signInView(message) {
  shown += 1;
  nav.hidden = true;
  signOutButton.hidden = true;
  banner.hidden = true;
  const input = h('input', { id: 'token', type: 'password', autocomplete: 'off', required: true, spellcheck: 'false',
    placeholder: 'rs_…' });
  const problem = h('div', {});
  const form = h('form', { class: 'sign-in panel', onsubmit: async (event) => {
    event.preventDefault();
    clear(problem);
    const token = input.value.trim();
    try {
      await api('GET', '/jobs', { token }); // a route only operators may call
    } catch (error) {
      const text = error instanceof ApiError && error.status === 403
        ? 'This is a store token: the console needs an operator token.'
        : error instanceof ApiError && error.status === 401
          ? 'This token is unknown, expired or revoked.' : `Cannot sign in: ${error.message}`;
      clear(problem, errorBox({ message: text }));
      return;
    }
    session.keep(token);
    input.value = '';
    if (!window.location.hash || window.location.hash === '#/sign-in') window.location.hash = '#/jobs';
    else render();
  } },
  h('h1', {}, 'Sign in'),
  message ? errorBox({ message }) : null,
  h('p', {}, 'Paste an operator token (', h('code', {}, 'make token ROLE=operator'),
    ' on the local stack). It is kept in this browser tab only, until you sign out or close the tab.'),
  h('label', { for: 'token' }, 'Operator token'), input,
  h('button', { type: 'submit', class: 'primary' }, 'Sign in'),
  problem);
  clear(main, form);
  input.focus();
}

async function render() {
  if (!session.token()) {
    signInView();
    return;
  }
  const here = route();
  const view = (here.id && DETAILS[here.name]) || (VIEWS.find(([name]) => name === here.name) || VIEWS[0])[2];
  showNav(here.name);
  shown += 1;
  const generation = shown;
  const context = { alive: () => generation === shown && session.token() !== null, refresh: render };
  clear(main, loading());
  refreshAlerts();
  try {
    await view(main, here, context);
  } catch (error) {
    if (context.alive()) clear(main, errorBox(error));
  }
}

// The open alerts: a count, a list, each acknowledged by a click.
async function refreshAlerts() {
  let alerts;
  try {
    alerts = (await api('GET', '/alerts', { query: { status: 'open' } })).alerts || [];
  } catch {
    banner.hidden = true; // no alert route on this stack, or a transient error: no banner
    return;
  }
  banner.hidden = alerts.length === 0;
  const list = h('ul', { class: 'alert-list', hidden: !alertsExpanded }, alerts.map((alert) => h('li', {},
    h('span', { class: 'badge bad' }, alert.kind.replaceAll('_', ' ')), ' ', time(alert.created_at), ' ',
    [alert.job, alert.store_id].filter(Boolean).join(' · '), ': ', alert.message || '',
    alert.run_id ? [' ', h('a', { href: `#/runs/${encodeURIComponent(alert.run_id)}` }, 'open run')] : null, ' ',
    h('button', { type: 'button', class: 'small', onclick: async () => {
      try {
        await post(`/alerts/${encodeURIComponent(alert.alert_id)}/acknowledge`);
        refreshAlerts();
      } catch (error) {
        clear(list, errorBox(error));
      }
    } }, 'Acknowledge'))));
  clear(banner,
    h('button', { type: 'button', class: 'link', 'aria-expanded': String(alertsExpanded), onclick: (event) => {
      alertsExpanded = !alertsExpanded;
      list.hidden = !alertsExpanded;
      event.currentTarget.setAttribute('aria-expanded', String(alertsExpanded));
    } }, `${alerts.length} open alert${alerts.length === 1 ? '' : 's'} (list)`),
    list);
}

window.addEventListener('hashchange', render);
window.addEventListener('signed-out', (event) => signInView(event.detail));
signOutButton.addEventListener('click', () => {
  session.forget();
  signInView();
});
window.setInterval(() => { if (session.token()) refreshAlerts(); }, 60000);
render();
