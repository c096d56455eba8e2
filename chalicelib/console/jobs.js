// Jobs: every job with its schedule in words, next fire time and last run; Run now.
import { get, post } from './api.js';
import { badge, clear, errorBox, h, table, time } from './dom.js';
import { parameterFields } from './forms.js';

export async function jobsView(main) {
  const { jobs } = await get('/jobs');
  const panel = h('div', {});
  clear(main,
    h('h1', {}, 'Jobs'),
    h('p', { class: 'muted' }, 'Every batch job, when it runs on its own, and its last run. Run now starts one by hand.'),
    panel,
    table([
      ['Job', (job) => [h('strong', {}, job.title), h('br'), h('small', { class: 'muted' }, job.name)]],
      ['Schedule', (job) => job.schedule_text || job.schedule || h('span', { class: 'muted' }, 'on demand only')],
      ['Next run', (job) => time(job.next_run_at)],
      ['Last run', (job) => (job.last_run ? [badge(job.last_run.status), ' ',
        h('a', { href: `#/runs/${encodeURIComponent(job.last_run.run_id)}` }, time(job.last_run.created_at))]
        : h('span', { class: 'muted' }, 'never run'))],
      ['', (job) => h('button', { type: 'button', onclick: () => runForm(panel, job) }, 'Run now…')],
    ], jobs, 'No jobs.'));
}

function runForm(panel, job) {
  const { labels, read } = parameterFields(job.params || {});
  const dryRun = h('input', { id: 'dry-run', type: 'checkbox' });
  const problem = h('div', {});
  const form = h('form', { class: 'panel run-form', 'aria-label': `Run ${job.title}`, onsubmit: async (event) => {
    event.preventDefault();
    clear(problem);
    try {
      const { run } = await post(`/jobs/${encodeURIComponent(job.name)}/runs`, { params: read(), dry_run: dryRun.checked });
      window.location.hash = `#/runs/${encodeURIComponent(run.run_id)}`;
    } catch (error) {
      clear(problem, errorBox(error));
    }
  } },
  h('h2', {}, `Run ${job.title} now`),
  h('p', { class: 'muted' }, job.description),
  labels.length ? labels : h('p', { class: 'muted' }, 'This job takes no parameters.'),
  h('label', { for: 'dry-run', class: 'check' }, dryRun, 'Dry run',
    h('small', {}, 'count what it would change, write nothing')),
  h('div', { class: 'actions' },
    h('button', { type: 'submit', class: 'primary' }, 'Start run'),
    h('button', { type: 'button', onclick: () => clear(panel) }, 'Close')),
  problem);
  clear(panel, form);
  form.scrollIntoView({ block: 'nearest' });
}
