/**
 * The jobs routes of the stub gateway (`/v1/jobs...`), for the SDK's and the CLI's tests.
 *
 * A job's fate is chosen by its function name:
 * - `fail`: clone 1 traps; the job fails with `guest_trap` and lists the clone's error.
 * - `hang`: stays `running`; its event stream sends `state` and `placed`, then waits (until cancelled).
 * - `flaky`: done, but the first event stream drops after `state` and `placed`; later ones are whole.
 * - `forgetful`: done, but the first event stream drops after `forked`, and the stub then answers
 *   that stream's Last-Event-ID as one it no longer keeps: a fresh `state` and the whole story again.
 * - `dropping`: stays `running`, and every event stream drops after `state` (or at once, when resumed).
 * - anything else: done. Clone `i` outputs `inputs[i]`, else `input`, else `clone i`; the reduce
 *   output (unless `reduce: false`) is the outputs joined with `+`.
 * Everything is decided at submit, so `GET /v1/jobs/:id` already shows the final record; the first
 * event stream to reach the end tells the job's story with a few milliseconds between events, and
 * later ones (of a finished job) send `state` and the terminal event only, as the gateway does.
 * Events carry ids as the gateway's do: the story's events are 1..n, the first `state` is 0 (for a
 * finished job n-1, before the end); `Last-Event-ID: N` gets the events after N, without `state`.
 */
import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { JobRecord } from '../types.js';
import { sendError, sendJson } from './stub-replies.js';

interface StubJob {
  record: JobRecord;
  outputs: Buffer[];
  reduce: boolean;
  /** Open event streams, told when the job is cancelled. */
  listeners: Set<(record: JobRecord) => void>;
  connections: number;
  /** The whole story has been streamed once; later readers of a finished job get `state` and the end, as from the gateway. */
  told: boolean;
}

export interface JobRequest {
  method: string;
  route: string;
  search: URLSearchParams;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

const EVENT_GAP_MS = 3;

export function createStubJobs() {
  const jobs = new Map<string, StubJob>();
  const byKey = new Map<string, { bodyHash: string; id: string }>();
  let nextId = 1;

  function submit(request: JobRequest, res: ServerResponse): void {
    let spec: { function?: unknown; clones?: unknown; input?: unknown; inputs?: unknown; reduce?: unknown };
    try {
      spec = JSON.parse(request.body.toString('utf8'));
    } catch {
      return sendError(res, 400, 'bad_request', 'body is not JSON');
    }
    if (typeof spec.function !== 'string' || !Number.isInteger(spec.clones) || (spec.clones as number) < 1) {
      return sendError(res, 400, 'bad_request', 'function and clones (a positive integer) are required');
    }
    const key = request.headers['idempotency-key'];
    const bodyHash = createHash('sha256').update(request.body).digest('hex');
    if (typeof key === 'string') {
      const seen = byKey.get(key);
      if (seen && seen.bodyHash !== bodyHash) return sendError(res, 409, 'conflict', `idempotency key ${key} was used for another job`);
      if (seen) return sendJson(res, 200, { job: jobs.get(seen.id)!.record });
    }
    const id = `job-${nextId++}`;
    const clones = spec.clones as number;
    const inputs = Array.isArray(spec.inputs) ? (spec.inputs as string[]).map((b) => Buffer.from(b, 'base64')) : undefined;
    const input = typeof spec.input === 'string' ? Buffer.from(spec.input, 'base64') : undefined;
    const outputs = Array.from({ length: clones }, (_, i) => inputs?.[i] ?? input ?? Buffer.from(`clone ${i}`));
    const job: StubJob = { record: finalRecord(id, spec.function, clones), outputs, reduce: spec.reduce !== false, listeners: new Set(), connections: 0, told: false };
    jobs.set(id, job);
    if (typeof key === 'string') byKey.set(key, { bodyHash, id });
    sendJson(res, 202, { job: job.record });
  }

  /** Answers a `/v1/jobs...` request; false when the route is not a jobs route. */
  function handle(request: JobRequest, res: ServerResponse): boolean {
    const { method, route } = request;
    if (route === '/v1/jobs') {
      if (method === 'POST') submit(request, res);
      else if (method === 'GET') list(request.search, res);
      else return false;
      return true;
    }
    const match = route.match(/^\/v1\/jobs\/([^/]+)(\/events|\/result|\/clones\/(\d+)\/output)?$/);
    if (!match) return false;
    const id = decodeURIComponent(match[1]);
    const job = jobs.get(id);
    if (!job) {
      sendError(res, 404, 'not_found', `no job ${id}`);
      return true;
    }
    const sub = match[2] ?? '';
    if (sub === '' && method === 'GET') sendJson(res, 200, { job: job.record });
    else if (sub === '' && method === 'DELETE') cancel(job, res);
    else if (sub === '/events' && method === 'GET') events(job, request, res);
    else if (sub === '/result' && method === 'GET') result(job, res);
    else if (sub.startsWith('/clones/') && method === 'GET') cloneOutput(job, Number(match[3]), res);
    else return false;
    return true;
  }

  function list(search: URLSearchParams, res: ServerResponse): void {
    const all = [...jobs.values()].map((job) => job.record).reverse();
    const start = Number(search.get('cursor') ?? 0);
    const limit = Number(search.get('limit') ?? 50);
    const page = all.slice(start, start + limit);
    sendJson(res, 200, start + limit < all.length ? { jobs: page, next: String(start + limit) } : { jobs: page });
  }

  function cancel(job: StubJob, res: ServerResponse): void {
    if (job.record.state === 'running' || job.record.state === 'queued') {
      const now = Date.now();
      job.record = { ...job.record, state: 'cancelled', updatedAt: now, finishedAt: now };
      for (const listener of job.listeners) listener(job.record);
    }
    sendJson(res, 200, { job: job.record });
  }

  function result(job: StubJob, res: ServerResponse): void {
    const { record } = job;
    if (record.state === 'failed') return sendError(res, 409, 'conflict', `job ${record.id} failed: ${record.error?.message}`);
    if (record.state !== 'done') return sendError(res, 409, 'conflict', `job ${record.id} is ${record.state}`);
    if (!job.reduce) return sendJson(res, 200, { outputs: job.outputs.map((output) => output.toString('base64')) });
    res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(reducedOutput(job));
  }

  function cloneOutput(job: StubJob, index: number, res: ServerResponse): void {
    const clone = job.record.clonesDetail[index];
    if (clone?.state !== 'done') return sendError(res, 404, 'not_found', `clone ${index} of job ${job.record.id} has no output`);
    res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(job.outputs[index]);
  }

  function events(job: StubJob, request: JobRequest, res: ServerResponse): void {
    job.connections++;
    const { record } = job;
    const fn = record.function;
    const header = request.headers['last-event-id'];
    if (header !== undefined && (typeof header !== 'string' || !/^\d+$/.test(header))) return sendError(res, 400, 'bad_request', 'Last-Event-ID must be a non-negative integer');
    const after = header === undefined || (fn === 'forgetful' && job.connections > 1) ? undefined : Number(header);
    const story = storyOf(job);
    const numbered = story.map(([kind, fields], i): ScriptedEvent => [kind, fields, i + 1]);
    let script: ScriptedEvent[];
    if (record.state === 'cancelled') script = [['state', { job: record }, 0], ['cancelled', { job: record }, undefined]];
    else if (after !== undefined) script = numbered.slice(after);
    else if (job.told) script = [['state', { job: record }, story.length - 1], numbered.at(-1)!];
    else script = [['state', { job: runningRecord(record) }, 0], ...numbered];
    const dropAfter = fn === 'dropping' ? (after === undefined ? 1 : 0)
      : fn === 'flaky' && job.connections === 1 ? 2
      : fn === 'forgetful' && job.connections === 1 ? 4
      : undefined;
    if (dropAfter !== undefined) script.splice(dropAfter);
    const whole = dropAfter === undefined && fn !== 'hang';

    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.write(': stub event stream\n\n');
    let stopped = false;
    const stop = () => {
      stopped = true;
      job.listeners.delete(onCancel);
    };
    const onCancel = (cancelled: JobRecord) => {
      if (stopped) return;
      stop();
      const data = { kind: 'cancelled', at: Date.now(), tenant: cancelled.tenant, jobId: cancelled.id, job: cancelled };
      res.end(`event: cancelled\ndata: ${JSON.stringify(data)}\n\n`);
    };
    job.listeners.add(onCancel);
    res.on('close', stop);
    let next = 0;
    const tick = () => {
      if (stopped) return;
      if (next === script.length) {
        if (fn === 'hang' && job.record.state === 'running') return; // wait for a cancel
        stop();
        // Whole streams end after the terminal event; the others drop as a broken connection would.
        return whole || record.state === 'cancelled' ? res.end() : res.destroy();
      }
      const [kind, fields, id] = script[next++];
      const data = { kind, at: Date.now(), tenant: record.tenant, jobId: record.id, ...fields };
      const text = `event: ${kind}\n${id === undefined ? '' : `id: ${id}\n`}data: ${JSON.stringify(data)}\n\n`;
      // Split each event across two writes, so the client must join chunks.
      const half = Math.floor(text.length / 2);
      res.write(text.slice(0, half));
      res.write(text.slice(half));
      if (whole && next === script.length) job.told = true;
      setTimeout(tick, EVENT_GAP_MS);
    };
    setTimeout(tick, EVENT_GAP_MS);
  }

  return { handle };
}

/** A scripted event: kind, fields, and its id (none for one the gateway makes up from the record). */
type ScriptedEvent = [kind: string, fields: Record<string, unknown>, id: number | undefined];

/** The job's events after `state`: the story the gateway would keep for it. */
function storyOf(job: StubJob): [string, Record<string, unknown>][] {
  const { record } = job;
  const story: [string, Record<string, unknown>][] = [['placed', { host: 'host-a' }]];
  if (record.state === 'running') return story;
  story.push(
    ['snapshot', { host: 'host-a', snapshotId: `snap-${record.id}`, initMs: 12, snapshotMs: 3 }],
    ['forked', { host: 'host-a', indices: record.clonesDetail.map((clone) => clone.index), runningMs: 4, pager: 'userfaultfd' }],
  );
  for (const clone of record.clonesDetail) {
    story.push(['progress', { index: clone.index, done: 1, total: 2, host: clone.host }]);
    if (clone.state === 'done') {
      story.push(['progress', { index: clone.index, done: 2, total: 2, host: clone.host }]);
      story.push(['clone.done', { index: clone.index, host: clone.host, startMs: clone.startMs, runMs: clone.runMs, pages: clone.pages }]);
    } else {
      for (let attempt = 1; attempt <= clone.attempts; attempt++) {
        story.push(['clone.failed', { index: clone.index, host: clone.host, attempt, error: clone.error, final: attempt === clone.attempts }]);
      }
    }
  }
  if (record.state === 'done') {
    if (job.reduce) story.push(['reduced', { bytes: reducedOutput(job).length }]);
    story.push(['done', { job: record }]);
  } else story.push(['failed', { error: record.error, errors: record.errors, job: record }]);
  return story;
}

/** The record as a reader saw it at the start: nothing run yet. */
function runningRecord(record: JobRecord): JobRecord {
  return {
    ...record,
    state: record.state === 'running' ? 'running' : 'queued',
    counts: { done: 0, failed: 0, running: 0, pending: record.clones },
    clonesDetail: record.clonesDetail.map((clone) => ({ index: clone.index, state: 'pending', attempts: 0 })),
    pagesFetched: 0,
    error: undefined,
    errors: undefined,
    finishedAt: undefined,
  };
}

function reducedOutput(job: StubJob): Buffer {
  return Buffer.concat(job.outputs.flatMap((output, i) => (i ? [Buffer.from('+'), output] : [output])));
}

function finalRecord(id: string, fn: string, clones: number): JobRecord {
  const now = Date.now();
  const createdAt = now - 2_000;
  const stillRunning = fn === 'hang' || fn === 'dropping';
  const clonesDetail: JobRecord['clonesDetail'] = Array.from({ length: clones }, (_, index) => {
    if (stillRunning) return { index, state: 'running', host: 'host-a', attempts: 1, startMs: now - 500 };
    if (fn === 'fail' && index === 1) {
      return { index, state: 'failed', host: 'host-b', attempts: 2, startMs: now - 900, runMs: 40, error: { code: 'guest_trap', message: 'unreachable executed' } };
    }
    const pages = { local: 5, multicast: 4, unicast: 6 + index, zero: 2 };
    return { index, state: 'done', host: index % 2 ? 'host-b' : 'host-a', attempts: 1, startMs: now - 900, runMs: 100 + index, pages };
  });
  const count = (state: string) => clonesDetail.filter((clone) => clone.state === state).length;
  const failed = fn === 'fail';
  return {
    id,
    tenant: 'default',
    function: fn,
    digest: 'cd'.repeat(32),
    clones,
    state: stillRunning ? 'running' : failed ? 'failed' : 'done',
    createdAt,
    updatedAt: now,
    startedAt: createdAt + 100,
    ...(stillRunning ? {} : { finishedAt: createdAt + 1_600 }),
    parentHost: 'host-a',
    snapshotId: `snap-${id}`,
    counts: { done: count('done'), failed: count('failed'), running: count('running'), pending: 0 },
    clonesDetail,
    pagesFetched: clonesDetail.reduce((sum, clone) => sum + (clone.pages ? clone.pages.multicast + clone.pages.unicast : 0), 0),
    ...(failed
      ? {
          error: { code: 'guest_trap', message: 'clone 1 failed: unreachable executed' },
          errors: [{ index: 1, code: 'guest_trap', message: 'unreachable executed' }],
        }
      : {}),
  };
}
