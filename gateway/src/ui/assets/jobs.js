// The jobs panel's state: the latest jobs from GET /v1/jobs (polled), and for the running ones their own event
// streams (GET /v1/jobs/:id/events), which move progress and each clone's state as they happen.
import { getJson, readEvents } from './api.js';

/** Jobs listed. */
const SHOWN = 10;
/** Running jobs followed over their event streams at once: a browser opens 6 connections to a host, and the dashboard's stream needs one. */
const FOLLOWED = 3;
const POLL_MS = 2000;
const TERMINAL = new Set(['done', 'failed', 'cancelled']);

export class Jobs {
  /** `onChange()` is called whenever something shown changed; `onError(err)` when a read is refused. */
  constructor(signal, onChange, onError) {
    this.signal = signal;
    this.onChange = onChange;
    this.onError = onError;
    /** id -> { job, perClone: Map<index, fraction>, live } */
    this.known = new Map();
  }

  /** Polls the list until the signal aborts. */
  async run() {
    while (!this.signal.aborted) {
      try {
        const { jobs } = await getJson(`/v1/jobs?limit=${SHOWN}`, this.signal);
        this.listed(jobs);
      } catch (err) {
        if (this.signal.aborted) return;
        this.onError(err);
      }
      await sleep(POLL_MS, this.signal);
    }
  }

  /** The jobs to show, newest first, each with its progress. */
  views() {
    return [...this.known.values()].sort((a, b) => b.job.createdAt - a.job.createdAt).slice(0, SHOWN).map((entry) => ({
      job: entry.job, live: entry.live, progress: progressOf(entry),
    }));
  }

  listed(jobs) {
    const ids = new Set(jobs.map((j) => j.id));
    for (const id of this.known.keys()) if (!ids.has(id) && !this.known.get(id).live) this.known.delete(id);
    for (const job of jobs) {
      const entry = this.known.get(job.id);
      // A followed job's stream is ahead of its record (which lags by up to 250 ms).
      if (entry?.live) continue;
      if (!entry || entry.job.updatedAt !== job.updatedAt) this.known.set(job.id, { job, perClone: entry?.perClone ?? new Map(), live: false });
    }
    const followed = [...this.known.values()].filter((e) => e.live).length;
    const waiting = [...this.known.values()].filter((e) => !e.live && !TERMINAL.has(e.job.state)).sort((a, b) => a.job.createdAt - b.job.createdAt);
    for (const entry of waiting.slice(0, Math.max(0, FOLLOWED - followed))) this.follow(entry);
    this.onChange();
  }

  /** Follows one job's events until it ends, resuming after a broken connection. */
  async follow(entry) {
    entry.live = true;
    let lastEventId;
    while (!this.signal.aborted && entry.live) {
      try {
        await readEvents(`/v1/jobs/${encodeURIComponent(entry.job.id)}/events`, {
          signal: this.signal,
          lastEventId,
          onEvent: ({ data, id }) => {
            if (id) lastEventId = id;
            apply(entry, data);
            this.onChange();
          },
        });
      } catch (err) {
        if (this.signal.aborted) return;
        if (err.status) {
          entry.live = false;
          this.onError(err);
          return;
        }
      }
      if (TERMINAL.has(entry.job.state)) entry.live = false;
      else await sleep(1000, this.signal);
    }
    this.onChange();
  }
}

/** One job event applied to what is shown (docs/jobs.md, "Events"). */
function apply(entry, e) {
  const clone = (i) => entry.job.clonesDetail[i];
  switch (e.kind) {
    case 'state':
      entry.job = e.job;
      break;
    case 'placed':
    case 'snapshot':
      entry.job = { ...entry.job, state: 'snapshotting' };
      break;
    case 'forked':
      entry.job = { ...entry.job, state: 'running' };
      for (const i of e.indices ?? []) if (clone(i)) Object.assign(clone(i), { state: 'running', host: e.host });
      break;
    case 'progress':
      // A job with tasks: tasks done of all, without a clone.
      if (e.index === undefined) {
        if (entry.job.tasks) entry.job = { ...entry.job, tasks: { ...entry.job.tasks, done: e.done } };
        break;
      }
      if (e.total > 0) entry.perClone.set(e.index, e.done / e.total);
      if (clone(e.index)?.state === 'pending') Object.assign(clone(e.index), { state: 'running', host: e.host });
      break;
    case 'clone.done':
      if (clone(e.index)) Object.assign(clone(e.index), { state: 'done', host: e.host });
      break;
    case 'clone.failed':
      // A task's failure that is not final leaves its clone running.
      if (clone(e.index) && (e.task === undefined || e.final)) clone(e.index).state = e.final ? 'failed' : 'pending';
      break;
    case 'clone.lost':
      if (clone(e.index)) clone(e.index).state = 'pending';
      break;
    case 'reduced':
      entry.job = { ...entry.job, state: 'reducing' };
      break;
    case 'done':
    case 'failed':
    case 'cancelled':
      if (e.job) entry.job = e.job;
      entry.live = false;
      break;
  }
  const counts = { done: 0, failed: 0, running: 0, pending: 0 };
  for (const c of entry.job.clonesDetail) counts[c.state]++;
  entry.job = { ...entry.job, counts };
}

/** The job's progress: tasks done of all in a job with tasks; else each clone done counts whole, a running one by its last progress report. */
function progressOf(entry) {
  const { job, perClone } = entry;
  if (job.state === 'done') return { fraction: 1, perClone };
  if (job.tasks) return { fraction: job.tasks.total ? job.tasks.done / job.tasks.total : 0, perClone };
  let sum = 0;
  for (const c of job.clonesDetail) sum += c.state === 'done' || c.state === 'failed' ? 1 : c.state === 'running' ? perClone.get(c.index) ?? 0 : 0;
  return { fraction: job.clones ? sum / job.clones : 0, perClone };
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}
