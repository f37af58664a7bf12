/** `flurry.jobs` against the stub gateway's jobs routes: submit, events, wait, result, errors. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Flurry, FlurryApiError, FlurryConnectionError, FlurryJobError, type JobEvent, type JobRecord } from './index.js';
import { readServerSentEvents } from './sse.js';
import { startStubGateway, type StubGateway } from './testing/stub-gateway.js';

let gateway: StubGateway;
let flurry: Flurry;

beforeAll(async () => {
  gateway = await startStubGateway();
  flurry = new Flurry({ url: gateway.url });
});
afterAll(() => gateway.close());

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const base64 = (value: string) => Buffer.from(value).toString('base64');

function requestsTo(method: string, url: string) {
  return gateway.requests.filter((request) => request.method === method && request.url === url);
}

async function errorOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(() => expect.fail('expected a rejection'), (err: unknown) => err);
}

describe('jobs', () => {
  it('jobs - submit posts the spec with inputs as base64 (objects as JSON, strings as UTF-8) and returns a handle', async () => {
    const handle = await flurry.jobs.submit({
      function: 'sum',
      clones: 2,
      init: { scene: 'teapot' },
      inputs: ['héllo', new Uint8Array([1, 2, 255])],
      timeoutMs: 5_000,
      retries: 1,
      reduce: false,
      callbackUrl: 'http://callback.test/done',
    });
    expect(handle.id).toMatch(/^job-\d+$/);
    expect(handle.submitted).toMatchObject({ id: handle.id, function: 'sum', clones: 2 });
    expect(handle.replayed).toBe(false);
    const [request] = requestsTo('POST', '/v1/jobs').slice(-1);
    expect(request.headers['content-type']).toBe('application/json');
    // Without a key of the caller's, a random one, so that retries cannot make two jobs.
    expect(request.headers['idempotency-key']).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(JSON.parse(request.body.toString())).toEqual({
      function: 'sum',
      clones: 2,
      init: base64('{"scene":"teapot"}'),
      inputs: [base64('héllo'), Buffer.from([1, 2, 255]).toString('base64')],
      timeoutMs: 5_000,
      retries: 1,
      reduce: false,
      callbackUrl: 'http://callback.test/done',
    });
  });

  it('jobs - run submits, waits and returns the reduce output', async () => {
    const seen: string[] = [];
    const result = await flurry.jobs.run({ function: 'sum', clones: 3, input: 'x' }, { onEvent: (event) => seen.push(event.kind) });
    expect(result).toBeInstanceOf(Uint8Array);
    expect(text(result as Uint8Array)).toBe('x+x+x');
    expect(seen[0]).toBe('state');
    expect(seen.at(-1)).toBe('done');
    expect(seen).toContain('reduced');
  });

  it('jobs - without reduce, result is each clone output in index order; output(i) reads one', async () => {
    const handle = await flurry.jobs.submit({ function: 'sum', clones: 2, inputs: ['a', { b: 1 }], reduce: false });
    const job = await handle.wait();
    expect(job).toMatchObject({ id: handle.id, state: 'done', counts: { done: 2, failed: 0 } });
    const result = (await handle.result()) as Uint8Array[];
    expect(result.map(text)).toEqual(['a', '{"b":1}']);
    expect(text(await handle.output(1))).toBe('{"b":1}');
    const missing = await errorOf(handle.output(7));
    expect(missing).toMatchObject({ name: 'FlurryApiError', status: 404, code: 'not_found' });
  });

  it('jobs - the idempotency key is sent as a header; the same body again returns the same job, another body conflicts', async () => {
    const spec = { function: 'sum', clones: 1, idempotencyKey: 'key-1' };
    const first = await flurry.jobs.submit(spec);
    expect(requestsTo('POST', '/v1/jobs').at(-1)!.headers['idempotency-key']).toBe('key-1');
    const again = await flurry.jobs.submit(spec);
    expect(again.id).toBe(first.id);
    expect([first.replayed, again.replayed]).toEqual([false, true]);
    const conflict = await errorOf(flurry.jobs.submit({ ...spec, clones: 2 }));
    expect(conflict).toBeInstanceOf(FlurryApiError);
    expect(conflict).toMatchObject({ status: 409, code: 'conflict' });
  });

  it('jobs - a failed job rejects wait() with FlurryJobError carrying the record, and result() with conflict', async () => {
    const handle = await flurry.jobs.submit({ function: 'fail', clones: 3 });
    const failures: boolean[] = [];
    const err = await errorOf(handle.wait({ onEvent: (event) => event.kind === 'clone.failed' && failures.push(event.final) }));
    // Clone 1 failed on its first attempt, was retried, and failed for good.
    expect(failures).toEqual([false, true]);
    expect(err).toBeInstanceOf(FlurryJobError);
    const jobError = err as FlurryJobError;
    expect(jobError).toMatchObject({ name: 'FlurryJobError', code: 'guest_trap', message: 'clone 1 failed: unreachable executed' });
    expect(jobError.job).toMatchObject({ id: handle.id, state: 'failed', counts: { done: 2, failed: 1 } });
    expect(jobError.job.errors).toEqual([{ index: 1, code: 'guest_trap', message: 'unreachable executed' }]);
    // Waiting again after the end: the stream is `state` and `failed` only, and the outcome the same.
    const kinds: string[] = [];
    expect(await errorOf(handle.wait({ onEvent: (event) => kinds.push(event.kind) }))).toMatchObject({ name: 'FlurryJobError', job: { state: 'failed' } });
    expect(kinds).toEqual(['state', 'failed']);
    expect(await errorOf(handle.result())).toMatchObject({ status: 409, code: 'conflict', message: expect.stringContaining('unreachable executed') });
    expect(await errorOf(flurry.jobs.run({ function: 'fail', clones: 2 }))).toBeInstanceOf(FlurryJobError);
  });

  it('jobs - events() yields typed events from state to the terminal event', async () => {
    const handle = await flurry.jobs.submit({ function: 'sum', clones: 2 });
    const events: JobEvent[] = [];
    const progress: string[] = [];
    for await (const event of handle.events()) {
      events.push(event);
      // Narrowing on `kind` types `data`; these lines would not compile otherwise.
      if (event.kind === 'state') expect(event.job.clones).toBe(2);
      if (event.kind === 'progress') progress.push(`${event.index}:${event.done}/${event.total}`);
      if (event.kind === 'clone.done') expect(event.pages?.unicast).toBeTypeOf('number');
      if (event.kind === 'forked') expect(event.indices).toEqual([0, 1]);
    }
    expect(events.map((event) => event.kind)).toEqual([
      'state', 'placed', 'snapshot', 'forked',
      'progress', 'progress', 'clone.done', 'progress', 'progress', 'clone.done',
      'reduced', 'done',
    ]);
    expect(events.every((event) => event.jobId === handle.id && event.tenant === 'default' && event.at > 0)).toBe(true);
    // Each event's SSE id: `state` 0, then the stream's sequence.
    expect(events.map((event) => event.id)).toEqual([...Array(12).keys()]);
    expect(progress).toEqual(['0:1/2', '0:2/2', '1:1/2', '1:2/2']);
    const done = events.at(-1)!;
    expect(done.kind === 'done' && done.job.state).toBe('done');
    expect(requestsTo('GET', `/v1/jobs/${handle.id}/events`).at(-1)!.headers.accept).toBe('text/event-stream');
  });

  it('events - a stream dropped mid-way resumes with the right Last-Event-ID and yields each event once', async () => {
    const handle = await flurry.jobs.submit({ function: 'flaky', clones: 2 });
    const kinds: string[] = [];
    for await (const event of handle.events()) kinds.push(event.kind);
    expect(kinds).toEqual([
      'state', 'placed', 'snapshot', 'forked',
      'progress', 'progress', 'clone.done', 'progress', 'progress', 'clone.done',
      'reduced', 'done',
    ]);
    const connections = requestsTo('GET', `/v1/jobs/${handle.id}/events`);
    expect(connections.map((request) => request.headers['last-event-id'])).toEqual([undefined, '1']);
  });

  it('events - when the gateway no longer keeps the resume point it sends a fresh state; events already yielded are skipped', async () => {
    const handle = await flurry.jobs.submit({ function: 'forgetful', clones: 1 });
    const kinds: string[] = [];
    for await (const event of handle.events()) kinds.push(event.kind);
    expect(kinds).toEqual(['state', 'placed', 'snapshot', 'forked', 'state', 'progress', 'progress', 'clone.done', 'reduced', 'done']);
    expect(requestsTo('GET', `/v1/jobs/${handle.id}/events`).map((request) => request.headers['last-event-id'])).toEqual([undefined, '3']);
  });

  it('events - a 503 with Retry-After and a cut connection while connecting are waited out', async () => {
    const handle = await new Flurry({ url: gateway.url, retries: { count: 2, delayMs: 5 } }).jobs.submit({ function: 'sum', clones: 1 });
    gateway.failNext('GET', `/v1/jobs/${handle.id}/events`, { status: 503, retryAfter: '0' }, 'reset');
    const kinds: string[] = [];
    for await (const event of handle.events()) kinds.push(event.kind);
    expect(kinds.at(0)).toBe('state');
    expect(kinds.at(-1)).toBe('done');
    expect(requestsTo('GET', `/v1/jobs/${handle.id}/events`)).toHaveLength(3);
  });

  it('events - consecutive failed reconnects end in FlurryConnectionError, from events() and from wait() while the job runs', async () => {
    const quick = new Flurry({ url: gateway.url, retries: { count: 2, delayMs: 5 } });
    const handle = await quick.jobs.submit({ function: 'dropping', clones: 1 });
    const kinds: string[] = [];
    const err = await errorOf((async () => {
      for await (const event of handle.events()) kinds.push(event.kind);
    })());
    expect(err).toBeInstanceOf(FlurryConnectionError);
    // The first stream drops after `state`; both resumes (Last-Event-ID 0) drop before any event.
    expect(kinds).toEqual(['state']);
    expect(requestsTo('GET', `/v1/jobs/${handle.id}/events`).map((request) => request.headers['last-event-id'])).toEqual([undefined, '0', '0']);
    expect(await errorOf(handle.wait())).toBeInstanceOf(FlurryConnectionError);
  });

  it('events - with retries 0 a dropped stream is not resumed', async () => {
    const handle = await new Flurry({ url: gateway.url, retries: 0 }).jobs.submit({ function: 'dropping', clones: 1 });
    const kinds: string[] = [];
    const err = await errorOf((async () => {
      for await (const event of handle.events()) kinds.push(event.kind);
    })());
    expect(err).toBeInstanceOf(FlurryConnectionError);
    expect(kinds).toEqual(['state']);
    expect(requestsTo('GET', `/v1/jobs/${handle.id}/events`)).toHaveLength(1);
  });

  it('submit - retried after a lost connection and a 503 with the same Idempotency-Key: one job', async () => {
    const quick = new Flurry({ url: gateway.url, retries: { count: 3, delayMs: 5 } });
    gateway.failNext('POST', '/v1/jobs', 'reset', { status: 503, retryAfter: '0' });
    const before = requestsTo('POST', '/v1/jobs').length;
    const handle = await quick.jobs.submit({ function: 'sum', clones: 1 });
    const posts = requestsTo('POST', '/v1/jobs').slice(before);
    expect(posts).toHaveLength(3);
    const key = posts[0].headers['idempotency-key'];
    expect(key).toBeTypeOf('string');
    expect(posts.map((post) => post.headers['idempotency-key'])).toEqual([key, key, key]);
    expect(handle.replayed).toBe(false);
    // Each submit has its own key: the same spec twice is two jobs.
    const other = await quick.jobs.submit({ function: 'sum', clones: 1 });
    expect(other.id).not.toBe(handle.id);
    expect(requestsTo('POST', '/v1/jobs').at(-1)!.headers['idempotency-key']).not.toBe(key);
  });

  it('jobs - cancel ends a running job: wait() rejects with FlurryJobError code cancelled', async () => {
    const handle = await flurry.jobs.submit({ function: 'hang', clones: 2 });
    const waiting = errorOf(handle.wait());
    // result() while the job runs is a conflict.
    expect(await errorOf(handle.result())).toMatchObject({ status: 409, code: 'conflict' });
    await new Promise((resolve) => setTimeout(resolve, 30));
    const cancelled = await handle.cancel();
    expect(cancelled.state).toBe('cancelled');
    expect(requestsTo('DELETE', `/v1/jobs/${handle.id}`)).toHaveLength(1);
    const err = await waiting;
    expect(err).toBeInstanceOf(FlurryJobError);
    expect(err).toMatchObject({ code: 'cancelled', job: { state: 'cancelled' } });
  });

  it('jobs - breaking out of events() closes the stream; an abort signal stops wait()', async () => {
    const handle = await flurry.jobs.submit({ function: 'hang', clones: 1 });
    for await (const event of handle.events()) if (event.kind === 'state') break;
    const controller = new AbortController();
    const waiting = errorOf(handle.wait({ signal: controller.signal }));
    controller.abort(new Error('enough'));
    expect(await waiting).toMatchObject({ message: 'enough' });
    await handle.cancel();
  });

  it('jobs - get, list with limit and cursor, and not_found for an unknown job', async () => {
    const a = await flurry.jobs.submit({ function: 'sum', clones: 1 });
    const b = await flurry.jobs.submit({ function: 'sum', clones: 1 });
    expect(await flurry.jobs.get(a.id)).toMatchObject<Partial<JobRecord>>({ id: a.id, state: 'done' });
    const first = await flurry.jobs.list({ limit: 1 });
    expect(first.jobs.map((job) => job.id)).toEqual([b.id]);
    expect(requestsTo('GET', '/v1/jobs?limit=1')).toHaveLength(1);
    const second = await flurry.jobs.list({ limit: 1, cursor: first.next });
    expect(second.jobs.map((job) => job.id)).toEqual([a.id]);
    expect(await errorOf(flurry.jobs.get('job-404'))).toMatchObject({ status: 404, code: 'not_found' });
    expect(await errorOf(flurry.jobs.handle('job-404').events().next())).toMatchObject({ status: 404, code: 'not_found' });
  });
});

describe('sse', () => {
  function streamOf(...chunks: string[]): ReadableStream<Uint8Array> {
    return new ReadableStream({
      start(controller) {
        for (const chunk of chunks) controller.enqueue(new TextEncoder().encode(chunk));
        controller.close();
      },
    });
  }

  it('sse - joins chunks and data lines, skips comments, takes CRLF and CR, drops an unterminated event', async () => {
    const events = [];
    for await (const event of readServerSentEvents(streamOf(
      '\uFEFF: hello\n\nevent: a\ndata: {"x"', ':1}\n\nevent: b\r\nid: 7\r\ndata: one\r\ndata:two\r', '\n\r',
      'data: plain\r\rid: 8\nevent: c\n\n', 'event: d\ndata: cut off',
    ))) events.push(event);
    expect(events).toEqual([
      { event: 'a', data: '{"x":1}', id: undefined },
      { event: 'b', data: 'one\ntwo', id: '7' },
      { event: 'message', data: 'plain', id: '7' },
    ]);
  });
});
