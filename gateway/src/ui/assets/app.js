// The dashboard (docs/dashboard.md): asks for an API key (kept in sessionStorage), then shows the fleet as the
// key's role may see it, live: the dashboard stream (GET /v1/dashboard/events) and the jobs (jobs.js).
import { ApiError, apiKey, getJson, readEvents } from './api.js';
import { h } from './dom.js';
import { Jobs } from './jobs.js';
import { hostsPanel, jobsPanel, migrationsPanel, movesPanel, servicesPanel } from './panels.js';

const $ = (id) => document.getElementById(id);
const charts = new Map();
let session;
let view;
let jobs;

function setStatus(text, kind) {
  $('status').textContent = text;
  $('status').className = `status ${kind}`;
}

function fill(id, content) {
  $(id).querySelector('.body').replaceChildren(content);
}

function render() {
  const now = Date.now();
  if (view) {
    $('who').replaceChildren(h('span', {}, `tenant ${view.caller.tenant}`), h('span', { class: `role ${view.caller.role}` }, view.caller.role));
    fill('hosts', hostsPanel(view.hosts, now));
    fill('services', servicesPanel(view.services));
    fill('migrations', migrationsPanel(view.migrations, charts));
    fill('moves', movesPanel(view.moves, view.caller.role));
  }
  if (jobs) fill('jobs', jobsPanel(jobs.views(), now));
}

/** Rendering at most once a frame, however many events arrive. */
let pending = false;
function changed() {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    render();
  });
}

function refused(err) {
  if (err instanceof ApiError && err.status === 401) {
    signOut(`The gateway refused this key: ${err.message}`);
    return true;
  }
  setStatus(`error: ${err.message}`, 'error');
  return false;
}

/** Follows the dashboard stream, reconnecting after a second when it breaks. */
async function followDashboard(signal) {
  while (!signal.aborted) {
    try {
      await readEvents('/v1/dashboard/events', {
        signal,
        onEvent: ({ event, data }) => {
          if (event !== 'dashboard') return;
          view = data;
          setStatus('live', 'live');
          changed();
        },
      });
      setStatus('stream ended; reconnecting', 'warn');
    } catch (err) {
      if (signal.aborted || refused(err)) return;
      setStatus(`reconnecting (${err.message})`, 'warn');
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

async function open() {
  session?.abort();
  session = new AbortController();
  const { signal } = session;
  try {
    view = await getJson('/v1/dashboard', signal);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      const tried = apiKey.get() !== '';
      apiKey.forget();
      return showLogin(tried ? `The gateway refused this key: ${err.message}` : '');
    }
    return showLogin(`The gateway did not answer: ${err.message}`);
  }
  $('login').hidden = true;
  $('panels').hidden = false;
  $('forget').hidden = apiKey.get() === '';
  jobs = new Jobs(signal, changed, refused);
  render();
  void followDashboard(signal);
  void jobs.run();
}

function showLogin(message) {
  $('panels').hidden = true;
  $('forget').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message;
  $('who').replaceChildren();
  setStatus('not connected', '');
  $('key').focus();
}

function signOut(message = '') {
  session?.abort();
  apiKey.forget();
  view = undefined;
  jobs = undefined;
  showLogin(message);
}

$('login').addEventListener('submit', (e) => {
  e.preventDefault();
  apiKey.set($('key').value.trim());
  $('key').value = '';
  void open();
});
$('forget').addEventListener('click', () => signOut());
// Ages ("3 s ago") move on between events.
setInterval(changed, 1000);
void open();
