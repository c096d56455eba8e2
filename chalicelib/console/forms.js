// Forms: filters kept in the address (#/view?name=value), a job's parameters, store choice.
import { get } from './api.js';
import { h } from './dom.js';

let stores = null;

// Every store as [id, name] (read once per page load).
export async function storeChoices() {
  if (stores === null) {
    const answer = await get('/data/stores', { limit: 1000 });
    stores = answer.items.map((store) => [store.id, store.name ? `${store.id} — ${store.name}` : store.id]);
  }
  return stores;
}

function control(spec, value) {
  const id = `f-${spec.name}`;
  if (spec.options) {
    return h('select', { id, name: spec.name, required: spec.required },
      spec.required ? null : h('option', { value: '' }, spec.any || 'all'),
      spec.options.map((option) => {
        const [optionValue, label] = Array.isArray(option) ? option : [option, option];
        return h('option', { value: optionValue, selected: optionValue === value }, label);
      }));
  }
  return h('input', { id, name: spec.name, type: spec.type || 'text', value: value || '', required: spec.required,
    placeholder: spec.placeholder });
}

// A filter form over `fields` ({name, label, options?, type?, required?}); submitting puts the
// values in the address, which renders the view again with them.
export function filterForm(view, fields, query, button = 'Show') {
  return h('form', { class: 'filters', onsubmit: (event) => {
    event.preventDefault();
    const params = new URLSearchParams();
    for (const [name, value] of new FormData(event.target)) if (value) params.set(name, value);
    const text = params.toString();
    const target = `#/${view}${text ? `?${text}` : ''}`;
    if (window.location.hash === target) window.dispatchEvent(new HashChangeEvent('hashchange'));
    else window.location.hash = target;
  } },
  fields.map((spec) => h('label', { for: `f-${spec.name}` }, spec.label, control(spec, query[spec.name]))),
  h('button', { type: 'submit' }, button));
}

// `datetime-local` (read as UTC) → ISO 8601 with Z.
export function utc(value) {
  return value ? `${value.length === 16 ? `${value}:00` : value}Z` : '';
}

// The inputs of a job's parameters, as GET /jobs describes them ({type, default, help, required?,
// choices?}); `read()` answers the params object (only the fields given).
export function parameterFields(params) {
  const inputs = Object.entries(params).map(([name, spec]) => {
    const id = `p-${name}`;
    let input;
    if (spec.type === 'bool') input = h('input', { id, type: 'checkbox', checked: Boolean(spec.default) });
    else if (spec.type === 'choice') {
      input = h('select', { id, required: spec.required },
        h('option', { value: '' }, spec.default === null ? '(none)' : `(default: ${spec.default})`),
        spec.choices.map((choice) => h('option', { value: choice }, choice)));
    } else {
      const type = { int: 'number', date: 'date' }[spec.type] || 'text';
      input = h('input', { id, type, required: spec.required, step: type === 'number' ? '1' : null,
        placeholder: spec.type === 'ids' ? 'ids, separated by commas' : (spec.default ?? '') });
    }
    const label = h('label', { for: id, class: spec.type === 'bool' ? 'check' : null },
      spec.type === 'bool' ? input : null, name, spec.required ? ' *' : '',
      h('small', {}, spec.help || ''), spec.type === 'bool' ? null : input);
    return { name, spec, input, label };
  });
  const read = () => {
    const values = {};
    for (const { name, spec, input } of inputs) {
      if (spec.type === 'bool') {
        if (input.checked !== Boolean(spec.default)) values[name] = input.checked;
      } else if (input.value.trim() !== '') {
        const text = input.value.trim();
        values[name] = spec.type === 'ids' ? text.split(/[\s,]+/).filter(Boolean)
          : spec.type === 'int' ? Number.parseInt(text, 10) : text;
      }
    }
    return values;
  };
  return { labels: inputs.map((item) => item.label), read };
}
