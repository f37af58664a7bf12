// Malformed NATS messages on every subject the gateway and the hosts listen on
// (the subjects come from core's SubjectTable, so a new one cannot be left out):
// a seeded, bounded fuzz of random bytes, truncated msgpack, wrong types, huge
// and deeply nested values and prototype-polluting keys, sent as requests and as
// plain publishes. No process may exit, every message must be counted as
// rejected by a listener, each request must get a bad_request answer, and the
// fleet must then still serve a call, a job and a service request.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import {
  ControllerSubjects, decode, DEFAULT_TENANT, encode, JobSubjects, MessageByteLimits, MigrationSubjects, ServiceSubjects, SubjectTable, Subjects,
  whyMalformed, type HostRecord, type MessageKind, type SubjectKind,
} from '@flurry/core';
import { LocalFleet } from '../infra/src/local-fleet.js';
import { seededRandom } from '../infra/src/seeded-random.js';
import { deploy, guestProgram } from './helpers/functions.js';
import { gatewayApi, json, jobRecord, until } from './helpers/gateway-api.js';
import { finishedJob, submitJob } from './helpers/jobs.js';
import { slowModule } from './helpers/wat.js';
import { randomBytes } from 'node:crypto';
import { connect as connectTcp } from 'node:net';
import { call as natsCall, encodeFrame, FrameReader, FrameType, type Frame } from '@flurry/core';

const SEED = Number(process.env.FLURRY_FUZZ_SEED ?? 20261206);
const PER_SUBJECT = 200;
const TENANT = DEFAULT_TENANT;

type Listened = { [K in SubjectKind]: (typeof SubjectTable)[K]['listener'] extends 'client' ? never : K }[SubjectKind];
type ListenedKind = (typeof SubjectTable)[Listened]['request'];

const bytes = (n: number) => new Uint8Array(n).fill(7);
const ref = { store: 'flurry_data_default', name: 'db', digest: `sha256:${'0'.repeat(64)}`, bytes: 3 };
const invoke = { requestId: 'r', tenant: TENANT, name: 'echo', digest: 'd', method: 'GET', path: '/', query: '', headers: [['a', 'b']], body: bytes(3) };

/** One valid message of each kind a listener receives: the fuzz mutates these. */
const samples: Record<ListenedKind, Record<string, unknown>> = {
  PlaceRequest: { requestId: 'r', tenant: TENANT, name: 'echo', digest: 'd' },
  DrainRequest: { requestId: 'r' },
  FleetEvent: { kind: 'host.reconnected', at: 1, hostId: 'h', startedAt: 1, brokerOutages: 1 },
  InvokeRequest: invoke,
  OpenCallsRequest: { token: bytes(32) },
  SnapshotRequest: { requestId: 'r', tenant: TENANT, name: 'n', digest: 'd', initInput: bytes(2), initData: ref, keep: true },
  ForkRequest: {
    requestId: 'r', descriptor: bytes(8), clones: [{ index: 0, input: bytes(1) }], count: 1, resultSubject: 'x', prefetch: false, mode: 'lazy',
    objects: { store: 's', inputs: { 0: 'o' }, outputPrefix: 'p', minOutputBytes: 1 }, timeoutMs: 10,
    tasks: { count: 4, subject: 's', keepOutputs: true }, keptOutputs: [{ requestId: 'r', first: 0, count: 2 }],
  },
  ReleaseRequest: { tenant: TENANT, snapshotId: 's', holder: 'h' },
  PageFetchRequest: { hostId: 'h', chunks: [1, 2, 3], force: true },
  PageMessage: { chunk: 0, bytes: bytes(16) },
  CancelRequest: { tenant: TENANT, snapshotId: 's', jobId: 'j' },
  CloneResult: {
    requestId: 'r', hostId: 'h', index: 100_000, ok: true, output: bytes(2), startMs: 1, runMs: 1,
    pages: { local: 0, multicast: 0, unicast: 0, zero: 0 }, faultWaitMs: 0, progress: { done: 1, total: 1 },
  },
  CloneProgress: { requestId: 'r', hostId: 'h', index: 100_000, done: 1, total: 2 },
  TaskRequest: { requestId: 'r', hostId: 'h', index: 0, failed: [{ task: 1, error: { code: 'guest_trap', message: 'm' } }], range: { lo: 0, hi: 4 } },
  TaskSplitRequest: { requestId: 'r', index: 0, lo: 0 },
  JobEvent: { kind: 'progress', at: 1, tenant: TENANT, jobId: 'j', note: { a: [1, 2] } },
  JobControlRequest: { action: 'cancel', tenant: TENANT, jobId: 'j' },
  CreateInstanceRequest: { requestId: 'r', tenant: TENANT, service: 's', name: 'n', digest: 'd', instanceId: 'i', init: bytes(1), initData: ref },
  DestroyInstanceRequest: { tenant: TENANT, service: 's', instanceId: 'i' },
  StandbyParentRequest: { requestId: 'r', tenant: TENANT, name: 'n', digest: 'd', holdMs: 10 },
  MigrateInstanceRequest: { requestId: 'r', tenant: TENANT, service: 's', instanceId: 'i', name: 'n', digest: 'd', target: 't', maxRounds: 1 },
  ReceiveStep: { step: 'commit', migrationId: 'm', pages: bytes(8), bytes: bytes(8), memoryBytes: 65536, globals: { g: { n: 1 } }, expiresAt: 1, pagesSent: 2 },
  HandoverRequest: { migrationId: 'm', request: invoke },
  ServiceLoadReport: { gateway: 'g', at: 1, services: [{ tenant: TENANT, service: 's', held: 0, instances: { i: 1 } }] },
  DrainHostRequest: { requestId: 'r', hostId: 'h', reason: 'fuzz' },
  SetHostStateRequest: { state: 'active', reason: 'fuzz' },
  GuestLogBatch: { at: 1, tenant: TENANT, source: { kind: 'clone', jobId: 'j', index: 1 }, requestId: 'r', hostId: 'h', lines: [{ level: 'info', message: 'm' }], dropped: 0 },
};

/** Fuzzed messages of one kind: each is malformed (those that happen to be valid are drawn again). */
function fuzzMessages(kind: ListenedKind, rng: () => number, count: number): Uint8Array[] {
  const sample = samples[kind];
  const keys = Object.keys(sample);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)];
  const wrongValues = [123, -1.5, 'text', true, null, [], {}, bytes(3), [1, 'a', {}], 2 ** 60, Number.NaN];
  const limit = MessageByteLimits[kind];
  // Just under and over the kind's limit where it is small; 256 KiB where it is beyond what a NATS message carries anyway.
  const hugeLength = () => Math.max(1, Math.min(limit, 256 << 10) + Math.floor(rng() * 2048) - 1024);
  const mutate = (value: unknown, depth: number): unknown => {
    if (depth > 0 && (Array.isArray(value) || (typeof value === 'object' && value !== null && !(value instanceof Uint8Array))) && rng() < 0.6) {
      const copy: Record<string, unknown> = Array.isArray(value) ? ([...value] as never) : { ...(value as object) };
      const ks = Object.keys(copy);
      if (ks.length > 0) {
        const k = pick(ks);
        copy[k] = mutate(copy[k], depth - 1);
        return copy;
      }
    }
    return pick(wrongValues);
  };
  const generators: (() => Uint8Array)[] = [
    // Random bytes.
    () => Uint8Array.from({ length: Math.floor(rng() * 300) }, () => Math.floor(rng() * 256)),
    // Valid msgpack, cut short.
    () => {
      const whole = encode(sample);
      return whole.subarray(0, Math.floor(rng() * whole.length));
    },
    // A wrong type in one field, at any depth.
    () => encode({ ...sample, ...{ [pick(keys)]: mutate(sample[pick(keys)], 3) } }),
    () => encode(mutate(sample, 3)),
    // A field missing.
    () => {
      const copy = { ...sample };
      delete copy[pick(keys)];
      return encode(copy);
    },
    // Huge strings and arrays (one draw in three: they are what costs the test its time).
    () => rng() < 0.66 ? encode(mutate(sample, 1)) : encode({ ...sample, [pick(keys)]: rng() < 0.5 ? 'x'.repeat(hugeLength()) : new Array(Math.floor(hugeLength() / 9)).fill(2 ** 40) }),
    // Deep nesting, written by hand (msgpackr cannot encode it): a map whose one field is thousands of nested arrays.
    () => {
      const depth = 33 + Math.floor(rng() * 3000);
      const key = encode(pick(keys));
      const out = new Uint8Array(1 + key.length + depth + 1).fill(0x91);
      out[0] = 0x81;
      out.set(key, 1);
      out[out.length - 1] = 0x01;
      return out;
    },
    // Prototype-polluting keys, at the top or inside a nested map.
    () => {
      const copy: Record<string, unknown> = { ...sample };
      const nested = keys.find((k) => typeof copy[k] === 'object' && copy[k] !== null && !Array.isArray(copy[k]) && !(copy[k] instanceof Uint8Array));
      const where = nested !== undefined && rng() < 0.5 ? (copy[nested] = { ...(copy[nested] as object) }) as Record<string, unknown> : copy;
      // Defined, not assigned: assigning `__proto__` would set the prototype instead of adding the key.
      Object.defineProperty(where, pick(['__proto__', 'constructor', 'prototype']), { value: { polluted: true }, enumerable: true });
      return encode(copy);
    },
    // Not a map at all.
    () => encode(pick([42, 'text', null, true, [sample], bytes(5)])),
  ];
  const out: Uint8Array[] = [];
  while (out.length < count) {
    const m = pick(generators)();
    if (whyMalformed(kind, m) !== undefined) out.push(m);
  }
  return out;
}

let fleet: LocalFleet;
let nc: NatsConnection;
const api = gatewayApi(() => fleet.url);

beforeAll(async () => {
  fleet = await LocalFleet.start({
    hosts: 2,
    hostEnv: { FLURRY_GUEST_THREADS: '3', FLURRY_HEARTBEAT_MS: '200', LOG_LEVEL: 'warn', FLURRY_CALL_THREADS: 'on' },
    gatewayEnv: { LOG_LEVEL: 'warn' },
  });
  for (const [name, module] of [['echo', guestProgram('echo')], ['room', guestProgram('room')], ['slow-job', slowModule(600_000, 'run')], ['quick-job', slowModule(0, 'run')]] as const) {
    const res = await deploy(fleet.url, name, module);
    expect(res.status, await res.clone().text()).toBe(201);
  }
  nc = await connect(fleet.adminConnectOptions());
});

afterAll(async () => {
  await nc?.close();
  await fleet?.stop();
});

async function hosts(): Promise<HostRecord[]> {
  return (await json<{ hosts: HostRecord[] }>(await api('GET', '/v1/hosts'))).hosts;
}

/** Rejected messages by kind, summed over the gateway and every host. */
async function rejectedTotals(): Promise<Record<string, number>> {
  const totals: Record<string, number> = {};
  const add = (counts: Record<string, number> | undefined) => {
    for (const [k, n] of Object.entries(counts ?? {})) totals[k] = (totals[k] ?? 0) + n;
  };
  add((await json<{ rejectedMessages: Record<string, number> }>(await api('GET', '/healthz'))).rejectedMessages);
  for (const h of await hosts()) add(h.rejectedMessages);
  return totals;
}

describe('nats fuzz', () => {
  it('every subject - malformed messages are counted and dropped, requests answered bad_request; the fleet serves on', async () => {
    // Everything that listens must be there: warm function, service instance, a running job with its memory server and a page cache.
    expect((await api('GET', '/fn/echo/warm')).status).toBe(200);
    const echo = (await json<{ function: { digest: string } }>(await api('GET', '/v1/functions/echo'))).function;
    await json(await api('POST', '/v1/services', { name: 'room', function: 'room', min: 1, max: 1 }), 201);
    const instance = await until('the room instance', async () => {
      const view = (await json<{ service: { instances: { id: string }[] } }>(await api('GET', '/v1/services/room'))).service;
      return view.instances[0]?.id;
    }, 30_000);
    const slow = await submitJob(api, { function: 'slow-job', clones: 4, reduce: false, timeoutMs: 900_000 });
    const running = await until('the slow job to run its clones on both hosts', async () => {
      const job = await jobRecord(api, slow.id);
      if (job.state !== 'running' || !job.snapshotId) return undefined;
      return (await hosts()).some((h) => h.pageCaches?.includes(job.snapshotId!)) ? job : undefined;
    }, 60_000, async () => JSON.stringify(await jobRecord(api, slow.id)));
    const snapshotId = running.snapshotId!;
    const hostIds = (await hosts()).map((h) => h.id);
    expect(hostIds).toHaveLength(2);
    const pids = Object.fromEntries((await hosts()).map((h) => [h.id, h.pid]));
    // The services controller listens once it leads: a garbled drain request gets an answer then.
    await until('the services controller to listen', () => nc.request(ControllerSubjects.drain, new Uint8Array([0xc1]), { timeout: 1000 }).then(() => true, () => undefined), 30_000);

    const perHost = (subject: (hostId: string) => string) => hostIds.map(subject);
    const targets: Record<SubjectKind, string[] | { notListened: string }> = {
      place: perHost(Subjects.place),
      drain: perHost(Subjects.drain),
      openCalls: perHost(Subjects.openCalls),
      invoke: [Subjects.invoke(TENANT, 'echo', echo.digest)],
      snapshot: perHost(Subjects.snapshot),
      fork: perHost(Subjects.fork),
      release: perHost(Subjects.release),
      parentFreed: [Subjects.parentFreed(TENANT)],
      pageRequests: [Subjects.pageRequests(TENANT, snapshotId)],
      pages: [Subjects.pages(TENANT, snapshotId)],
      unicastPages: { notListened: 'only the unicast baseline (benchmarks) subscribes to it, on an inbox' },
      event: { notListened: 'read by clients only' },
      hostReconnected: [Subjects.event('system', 'host.reconnected')],
      cancel: perHost(JobSubjects.cancel),
      split: perHost(JobSubjects.split),
      results: [JobSubjects.result(TENANT, slow.id, 100_000)],
      failures: [`${JobSubjects.failures(TENANT, slow.id)}.fuzz.100000`],
      progress: [JobSubjects.progress(TENANT, slow.id)],
      tasks: { notListened: 'served only while a task job runs; test/tasks.test.ts sends its task server malformed requests' },
      jobEvents: [JobSubjects.events(TENANT, slow.id)],
      jobControl: [JobSubjects.control],
      forkResults: { notListened: 'a plain fork\'s caller listens on its own inbox' },
      reduceResult: { notListened: 'an inbox with a random name, listened on only while a reduce runs' },
      createInstance: perHost(ServiceSubjects.create),
      destroyInstance: perHost(ServiceSubjects.destroy),
      serviceRequest: [ServiceSubjects.request(TENANT, 'room', instance)],
      standby: perHost(ServiceSubjects.standby),
      migrate: perHost(MigrationSubjects.migrate),
      receive: perHost(MigrationSubjects.receive),
      direct: hostIds.map((h) => MigrationSubjects.direct(h, 'fuzz')),
      load: [ControllerSubjects.load],
      controllerDrain: [ControllerSubjects.drain],
      controllerExiting: perHost(ControllerSubjects.exiting),
      hostState: perHost(ControllerSubjects.hostState),
      guestLogs: { notListened: 'read from its stream only when a tenant asks for logs; test/guest-logs.test.ts stores malformed batches and reads them back' },
    };

    // Job events are read from their stream: a reader following the job decodes (and drops) the fuzzed ones as they are stored.
    const eventsRead = api('GET', `/v1/jobs/${slow.id}/events`).then((res) => res.text());
    const before = await rejectedTotals();
    // The fleet's own traffic so far (deploys, calls, a service, a job forked across hosts) passed every check: only the probe was dropped.
    expect(Object.keys(before)).toEqual(['DrainHostRequest']);
    const fuzzStart = performance.now();
    const sent: Partial<Record<MessageKind, number>> = {};
    const rng = seededRandom(SEED);
    const badAnswers: string[] = [];
    for (const [kind, entry] of Object.entries(SubjectTable) as [SubjectKind, (typeof SubjectTable)[SubjectKind]][]) {
      const subjects = targets[kind];
      if (!Array.isArray(subjects)) continue;
      const requestKind = entry.request as ListenedKind;
      for (const subject of subjects) {
        const messages = fuzzMessages(requestKind, rng, PER_SUBJECT);
        sent[requestKind] = (sent[requestKind] ?? 0) + messages.length;
        const requests: Promise<void>[] = [];
        for (const m of messages) {
          // Half as requests where the subject answers (each must be answered bad_request), the rest as plain publishes.
          if ('reply' in entry && rng() < 0.5) {
            requests.push(nc.request(subject, m, { timeout: 10_000 }).then(
              (answer) => {
                const code = (decode<{ error?: { code?: string } }>(answer.data)).error?.code;
                if (code !== 'bad_request') badAnswers.push(`${subject}: answered ${JSON.stringify(decode(answer.data)).slice(0, 200)}`);
              },
              (err: Error) => void badAnswers.push(`${subject}: ${err.message}`),
            ));
          } else nc.publish(subject, m);
          if (requests.length >= 50) await Promise.all(requests.splice(0));
        }
        await Promise.all(requests);
        await nc.flush();
      }
    }
    expect(badAnswers).toEqual([]);
    const total = Object.values(sent).reduce((a, b) => a + b!, 0);
    console.log(`fuzzed ${total} messages (seed ${SEED}) in ${Math.round(performance.now() - fuzzStart)} ms`);

    expect((await api('DELETE', `/v1/jobs/${slow.id}`)).status).toBe(200);
    expect(await eventsRead).toContain('event: cancelled');

    // Every bad message was counted by a listener (heartbeats carry the hosts' counts).
    const counted = await until('every fuzzed message to be counted', async () => {
      const now = await rejectedTotals();
      const short = Object.entries(sent).filter(([k, n]) => (now[k] ?? 0) - (before[k] ?? 0) < n!);
      return short.length === 0 ? now : undefined;
    }, 30_000, async () => `sent ${JSON.stringify(sent)}, counted ${JSON.stringify(await rejectedTotals())} (before: ${JSON.stringify(before)})`);
    expect(Object.keys(counted)).toEqual(expect.arrayContaining(Object.keys(sent)));

    // No process exited or was replaced.
    expect(fleet.gateway.process.exitCode).toBeNull();
    for (const h of fleet.hosts) expect(h.process.exitCode).toBeNull();
    expect(Object.fromEntries((await hosts()).map((h) => [h.id, h.pid]))).toEqual(pids);
    expect(Object.prototype).not.toHaveProperty('polluted');

    // And the fleet still serves a call, a job and a service request.
    const call = await api('POST', '/fn/echo/after', 'still here');
    expect(call.status, await call.clone().text()).toBe(200);
    const quick = await submitJob(api, { function: 'quick-job', clones: 3, reduce: false });
    const done = await finishedJob(api, quick.id);
    expect(done.state).toBe('done');
    expect(await (await api('GET', `/v1/jobs/${quick.id}/clones/2/output`)).text()).toBe('done');
    const room = await api('GET', '/svc/room/state');
    expect(room.status, await room.clone().text()).toBe(200);

    // Every host's grant names its three call threads' ports; each welcomes the token and closes on a bad frame.
    for (const h of fleet.hosts) {
      const hostId = String(h.ready.hostId);
      const token = randomBytes(32);
      const grant = await until(`${hostId}'s three call threads`, async () => {
        const reply = await natsCall(nc, 'openCalls', Subjects.openCalls(hostId), { token });
        return reply.ok && reply.threadPorts?.length === 3 ? reply : undefined;
      }, 30_000);
      if (!grant.ok) throw new Error('not granted');
      for (const port of grant.threadPorts!) expect(await helloThenBadFrame(grant.host, port, token)).toEqual({ welcome: hostId, closed: true });
    }
  }, 240_000);
});

/** Says the token to a call thread's port, then sends a frame of no known type: its welcome, and whether it then closed (within 5 s). */
async function helloThenBadFrame(host: string, port: number, token: Uint8Array): Promise<{ welcome?: string; closed: boolean }> {
  const socket = connectTcp({ host, port });
  const reader = new FrameReader(1 << 20);
  const frames: Frame[] = [];
  socket.on('error', () => undefined);
  const closed = new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 5000);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
  const welcomed = new Promise<void>((resolve) => socket.on('data', (chunk: Buffer) => {
    frames.push(...reader.push(chunk));
    if (frames.some((f) => f.type === FrameType.welcome)) resolve();
  }));
  socket.write(encodeFrame(FrameType.hello, 0, token));
  await Promise.race([welcomed, closed]);
  socket.write(encodeFrame(99 as FrameType, 0, new Uint8Array(3)));
  const welcome = frames.find((f) => f.type === FrameType.welcome);
  return { ...(welcome && { welcome: Buffer.from(welcome.payload).toString() }), closed: await closed };
}
