// Job events kept in JetStream, with ids: a real nats-server, a gateway and
// three host processes. The SDK follows a job while its gateway is killed and
// resumes with Last-Event-ID; late readers get the record and the end; a
// Last-Event-ID over plain HTTP gets exactly what follows it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Flurry, type JobEvent } from '@flurry/sdk';
import { LocalFleet } from '../infra/src/local-fleet.js';
import { deploy, guestProgram } from './helpers/functions.js';

interface PatternReduce { count: number; ok: boolean; failed: number[]; distinctEntropy: number; distinctChecksums: number; restored: number }
interface SseMessage { event: string; id?: number; data: { kind: string; index?: number; job?: { state: string } } }

/** Whatever `work` gives, or an error naming `what` after `ms`: a failure ends here, not at the test's time limit. */
async function within<T>(what: string, ms: number, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error(`${what}: not done within ${ms} ms`)), ms);
  try {
    return await Promise.race([
      work(controller.signal),
      new Promise<never>((_, reject) => controller.signal.addEventListener('abort', () => reject(controller.signal.reason))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Reads a whole event stream (it ends after the job's terminal event) and parses its messages. */
async function readStream(url: string, headers: Record<string, string> = {}): Promise<SseMessage[]> {
  return within(`GET ${url}`, 60_000, async (signal) => {
    const res = await fetch(url, { headers, signal });
    const text = await res.text();
    expect(res.status, text).toBe(200);
    const messages: SseMessage[] = [];
    for (const block of text.split('\n\n')) {
      const fields = new Map(block.split('\n').filter((l) => !l.startsWith(':') && l.includes(': ')).map((l) => [l.slice(0, l.indexOf(': ')), l.slice(l.indexOf(': ') + 2)]));
      if (!fields.has('data')) continue;
      messages.push({ event: fields.get('event')!, id: fields.has('id') ? Number(fields.get('id')) : undefined, data: JSON.parse(fields.get('data')!) });
    }
    return messages;
  });
}

function expectIncreasing(ids: (number | undefined)[]): void {
  const defined = ids.filter((id): id is number => id !== undefined);
  expect(defined.length).toBeGreaterThan(0);
  for (let i = 1; i < defined.length; i++) expect(defined[i], `ids ${defined.join(',')}`).toBeGreaterThan(defined[i - 1]);
}

describe('job events', () => {
  let fleet: LocalFleet;
  /** The job followed through the gateway restart; the later tests read its kept events. */
  let jobId: string;

  beforeAll(async () => {
    fleet = await LocalFleet.start({
      hosts: 3,
      hostEnv: { FLURRY_GUEST_THREADS: '2', FLURRY_HEARTBEAT_MS: '250', FLURRY_HOST_TTL_S: '2', LOG_LEVEL: 'warn' },
      gatewayEnv: { FLURRY_HOST_TTL_S: '2', FLURRY_JOB_LEASE_MS: '2000', LOG_LEVEL: 'warn' },
    });
    expect((await deploy(fleet.url, 'pattern', guestProgram('pattern'))).ok).toBe(true);
  });

  afterAll(async () => {
    await fleet?.stop();
  });

  const eventsUrl = (id: string) => `${fleet.url}/v1/jobs/${id}/events`;

  it('gateway restarted mid-SSE - the SDK resumes with Last-Event-ID and sees every event once', async () => {
    // What each event-stream request of the SDK asked for.
    const resumedFrom: (string | null)[] = [];
    const fetch: typeof globalThis.fetch = (input, init) => {
      if (String(input).endsWith('/events')) resumedFrom.push(new Headers(init?.headers).get('last-event-id'));
      return globalThis.fetch(input, init);
    };
    // Patient enough for a gateway that takes a few seconds to come back.
    const flurry = new Flurry({ url: fleet.url, fetch, retries: { count: 12, withinMs: 60_000, delayMs: 200 } });
    // Two waves of 6 clones (3 hosts, 2 slots each), each verifying 256 MiB: the job outlives the first clone.done.
    const handle = await flurry.jobs.submit({ function: 'pattern', clones: 12, init: { mib: 256 }, input: { verify: 'all' } });
    jobId = handle.id;
    const seen: JobEvent[] = [];
    let restart: Promise<unknown> | undefined;
    await within('following the job', 90_000, async (signal) => {
      for await (const event of handle.events({ signal })) {
        seen.push(event);
        // Mid-job: the coordinator and this stream's gateway die together.
        if (event.kind === 'clone.done' && !restart) {
          restart = fleet.restartGateway({ hard: true });
          restart.catch(() => undefined); // awaited below, where its failure is reported
        }
      }
    });
    expect(restart, 'no clone.done arrived before the end').toBeDefined();
    await restart;

    const kinds = seen.map((e) => e.kind);
    expect(kinds[0]).toBe('state');
    expect(kinds.filter((k) => k === 'state'), 'a resume must not start over with a fresh state').toHaveLength(1);
    expect(kinds.at(-1)).toBe('done');
    const doneIndexes = seen.flatMap((e) => (e.kind === 'clone.done' ? [e.index] : []));
    expect([...doneIndexes].sort((a, b) => a - b)).toEqual([...Array(12).keys()]);
    expectIncreasing(seen.map((e) => e.id));
    // Every reconnect asked for what follows the last event it had.
    expect(resumedFrom.length, 'the stream never dropped').toBeGreaterThan(1);
    expect(resumedFrom[0]).toBeNull();
    for (const from of resumedFrom.slice(1)) expect(from).toMatch(/^\d+$/);

    // Nothing missed, nothing twice: what the SDK saw after `state` is exactly what the stream keeps after it.
    const kept = await readStream(eventsUrl(jobId), { 'last-event-id': String(seen[0].id) });
    expect(seen.slice(1).map((e) => [e.id, e.kind])).toEqual(kept.map((m) => [m.id, m.data.kind]));

    const reduced = JSON.parse(Buffer.from((await handle.result()) as Uint8Array).toString()) as PatternReduce;
    expect(reduced).toMatchObject({ count: 12, ok: true, failed: [], distinctEntropy: 12, distinctChecksums: 1, restored: 12 });
  }, 150_000);

  it('mid-job reader - state reflects every event up to its id, and exactly the later ones follow', async () => {
    const flurry = new Flurry({ url: fleet.url });
    const handle = await flurry.jobs.submit({ function: 'pattern', clones: 12, init: { mib: 128 }, input: { verify: 'all' } });
    let reader: Promise<SseMessage[]> | undefined;
    await within('following the job', 90_000, async (signal) => {
      for await (const event of handle.events({ signal })) {
        if (event.kind === 'clone.done' && !reader) reader = readStream(eventsUrl(handle.id));
      }
    });
    expect(reader, 'no clone.done arrived before the end').toBeDefined();
    const [state, ...after] = await reader!;
    expect(state.event).toBe('state');
    const kept = await readStream(eventsUrl(handle.id), { 'last-event-id': '0' });
    expect(after.map((m) => [m.id, m.event])).toEqual(kept.filter((m) => m.id! > state.id!).map((m) => [m.id, m.event]));
    // Nothing the state's id covers is missing from its record.
    const record = state.data.job as unknown as { clonesDetail: { index: number; state: string }[] };
    for (const m of kept) if (m.id! <= state.id! && m.event === 'clone.done') expect(record.clonesDetail[m.data.index!].state, `clone ${m.data.index}`).toBe('done');
  }, 120_000);

  it('late reader - a reader that connects after the job finished gets state, then the terminal event', async () => {
    const messages = await readStream(eventsUrl(jobId));
    expect(messages.map((m) => m.event)).toEqual(['state', 'done']);
    const [state, done] = messages;
    expect(state.data.job?.state).toBe('done');
    expect(done.data.kind).toBe('done');
    // The record reflects everything before the end; resuming from its id gives the end alone.
    expect(state.id).toBe(done.id! - 1);
    const kinds: string[] = [];
    for await (const event of new Flurry({ url: fleet.url }).jobs.handle(jobId).events()) kinds.push(event.kind);
    expect(kinds).toEqual(['state', 'done']);
  });

  it('Last-Event-ID - a resume over plain HTTP returns exactly the events after it', async () => {
    // From 0: every event the stream keeps for the job, with no state.
    const all = await readStream(eventsUrl(jobId), { 'last-event-id': '0' });
    expect(all.map((m) => m.event)).not.toContain('state');
    expect(all.at(-1)?.event).toBe('done');
    expectIncreasing(all.map((m) => m.id));
    const middle = all[Math.floor(all.length / 2)].id!;
    const rest = await readStream(eventsUrl(jobId), { 'last-event-id': String(middle) });
    expect(rest.map((m) => [m.id, m.event])).toEqual(all.filter((m) => m.id! > middle).map((m) => [m.id, m.event]));
    // After the last one: nothing more to say.
    expect(await readStream(eventsUrl(jobId), { 'last-event-id': String(all.at(-1)!.id) })).toEqual([]);
  });

  it('Last-Event-ID - a malformed id is a 400 with the usual error; an unknown job a 404', async () => {
    const bad = await fetch(eventsUrl(jobId), { headers: { 'last-event-id': 'seven' } });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('x-flurry-error')).toBe('bad_request');
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('bad_request');
    const missing = await fetch(eventsUrl('job-nope'), { headers: { 'last-event-id': '3' } });
    expect(missing.status).toBe(404);
  });
});
