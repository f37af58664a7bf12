import { describe, expect, it } from 'vitest';
import { encode } from './codec.js';
import { decodeChecked, decodeOrRefuse, logRejectedMessagesTo, MessageByteLimits, rejectedMessages } from './checked-decode.js';
import { FlurryError } from './errors.js';
import type { Logger } from './log.js';
import type { InvokeRequest, ReceiveStep } from './protocol.js';
import { MessageSchemas } from './schemas.js';
import { SubjectTable, type SubjectKind } from './subject-table.js';
import { ControllerSubjects, GuestLogSubjects, JobSubjects, MigrationSubjects, ServiceSubjects, Subjects } from './protocol.js';

const invoke: InvokeRequest = {
  requestId: 'req_1', tenant: 'acme', name: 'echo', digest: 'ab'.repeat(32), method: 'POST', path: '/x', query: 'a=1',
  headers: [['content-type', 'text/plain']], body: new Uint8Array([1, 2, 3]),
};

function rejected(kind: string): number {
  return rejectedMessages()[kind] ?? 0;
}

/** Runs `f` and returns how many messages of `kind` it made the decoder reject. */
function rejectionsDuring(kind: string, f: () => void): number {
  const before = rejected(kind);
  f();
  return rejected(kind) - before;
}

describe('checked decode', () => {
  it('a valid message - comes back equal, bytes binary', () => {
    const back = decodeChecked('InvokeRequest', encode(invoke));
    expect(back).toEqual({ ...invoke, body: expect.any(Uint8Array) });
    expect([...back!.body]).toEqual([1, 2, 3]);
  });

  it('not msgpack, truncated, empty - dropped and counted, never thrown', () => {
    const valid = encode(invoke);
    expect(rejectionsDuring('InvokeRequest', () => {
      expect(decodeChecked('InvokeRequest', new Uint8Array([0xc1, 0xc1, 0xc1]))).toBeUndefined();
      expect(decodeChecked('InvokeRequest', valid.subarray(0, valid.length - 5))).toBeUndefined();
      expect(decodeChecked('InvokeRequest', new Uint8Array(0))).toBeUndefined();
    })).toBe(3);
  });

  it('a wrong type in a field - refused with bad_request naming the field', () => {
    const bad = encode({ ...invoke, headers: [['x', 7]] });
    expect(decodeChecked('InvokeRequest', bad)).toBeUndefined();
    try {
      decodeOrRefuse('InvokeRequest', bad);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(FlurryError);
      expect((err as FlurryError).code).toBe('bad_request');
      expect((err as FlurryError).message).toMatch(/headers\.0\.1/);
    }
    expect(() => decodeOrRefuse('StoredJob', encode({ record: 1 }), 'k', 'internal')).toThrow(expect.objectContaining({ code: 'internal' }));
  });

  it('a message over its kind\'s byte limit - refused before decoding', () => {
    const big = encode({ requestId: 'x'.repeat(MessageByteLimits.PlaceRequest), tenant: 't', name: 'n', digest: 'd' });
    expect(rejectionsDuring('PlaceRequest', () => expect(decodeChecked('PlaceRequest', big)).toBeUndefined())).toBe(1);
    // The same size is fine where guest data travels.
    expect(decodeChecked('InvokeRequest', encode({ ...invoke, body: new Uint8Array(MessageByteLimits.PlaceRequest + 1) }))).toBeDefined();
  });

  it('__proto__, constructor and prototype keys - refused, and no prototype is touched', () => {
    // JSON.parse keeps `__proto__` as an own key, and msgpackr writes it as one; msgpackr reads it back as `__proto_`.
    const fromJson = JSON.parse('{"gateway":"g","at":1,"services":[{"tenant":"t","service":"s","held":0,"instances":{"__proto__":{"polluted":1}}}]}');
    expect(decodeChecked('ServiceLoadReport', encode(fromJson))).toBeUndefined();
    const withConstructor = { gateway: 'g', at: 1, services: [{ tenant: 't', service: 's', held: 0, instances: { constructor: 1 } }] };
    expect(decodeChecked('ServiceLoadReport', encode(withConstructor))).toBeUndefined();
    expect(decodeChecked('JobEvent', encode({ kind: 'progress', at: 1, tenant: 't', jobId: 'j', prototype: { x: 1 } }))).toBeUndefined();
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    // Without them the same message passes.
    expect(decodeChecked('ServiceLoadReport', encode({ ...withConstructor, services: [{ ...withConstructor.services[0], instances: { i1: 2 } }] }))).toBeDefined();
  });

  it('a huge array of wrong elements - refused at the first, naming it', () => {
    const bad = encode({ ...invoke, headers: new Array(100_000).fill(2 ** 40) });
    expect(() => decodeOrRefuse('InvokeRequest', bad)).toThrow(/malformed InvokeRequest: headers\.0: /);
    const badKey = encode({ gateway: 'g', at: 1, services: [{ tenant: 't', service: 's', held: 0, instances: Object.fromEntries(Array.from({ length: 50_000 }, (_, i) => [`i${i}`, 'x'])) }] });
    expect(() => decodeOrRefuse('ServiceLoadReport', badKey)).toThrow(/services\.0\.instances\.i0: /);
  });

  it('deeply nested values - refused without a stack overflow', () => {
    // 100,000 nested one-element arrays, written by hand: msgpackr cannot even encode them.
    const deep = new Uint8Array(100_001).fill(0x91);
    deep[deep.length - 1] = 0x01;
    expect(rejectionsDuring('JobEvent', () => expect(decodeChecked('JobEvent', deep)).toBeUndefined())).toBe(1);
    let nested: unknown = 1;
    for (let i = 0; i < 40; i++) nested = { a: nested };
    expect(decodeChecked('JobEvent', encode({ kind: 'progress', at: 1, tenant: 't', jobId: 'j', extra: nested }))).toBeUndefined();
  });

  it('logs - once per kind, however many are dropped', () => {
    const lines: unknown[] = [];
    logRejectedMessagesTo({ warn: (o: unknown) => lines.push(o) } as unknown as Logger);
    // A kind no other test rejects, so that its first rejection happens here.
    for (let i = 0; i < 5; i++) decodeChecked('CancelReply', new Uint8Array([0xc1]), 'flurry.test');
    expect(lines).toEqual([expect.objectContaining({ kind: 'CancelReply', subject: 'flurry.test' })]);
    expect(rejected('CancelReply')).toBe(5);
  });
});

describe('schemas', () => {
  it('migration steps - pages must be u32s, steps known, counts whole', () => {
    const apply: ReceiveStep = { step: 'apply', migrationId: 'm', pages: new Uint8Array(8), bytes: new Uint8Array(0), memoryBytes: 65536 };
    expect(decodeChecked('ReceiveStep', encode(apply))).toBeDefined();
    expect(decodeChecked('ReceiveStep', encode({ ...apply, pages: new Uint8Array(6) }))).toBeUndefined();
    expect(decodeChecked('ReceiveStep', encode({ ...apply, memoryBytes: -1 }))).toBeUndefined();
    // Kept replies riding with the pages: checked as a quiesce step's.
    const kept = { requestId: 'r1', ageMs: 5, reply: { ok: true, status: 200, headers: [], body: new Uint8Array(3), hostId: 'h', durationMs: 1 } };
    expect(decodeChecked('ReceiveStep', encode({ ...apply, replies: [kept] }))).toBeDefined();
    expect(decodeChecked('ReceiveStep', encode({ ...apply, replies: [{ ...kept, ageMs: -1 }] }))).toBeUndefined();
    expect(decodeChecked('ReceiveStep', encode({ ...apply, replies: 'r1' }))).toBeUndefined();
    expect(decodeChecked('ReceiveStep', encode({ step: 'explode', migrationId: 'm' }))).toBeUndefined();
    const prepare: ReceiveStep = { step: 'prepare', migrationId: 'm', requestId: 'r', tenant: 't', service: 's', instanceId: 'i', name: 'n', digest: 'd', memoryBytes: 65536, parentDigest: 'ab' };
    expect(decodeChecked('ReceiveStep', encode(prepare))).toBeDefined();
    expect(decodeChecked('ReceiveStep', encode({ ...prepare, parentDigest: 7 }))).toBeUndefined();
    expect(decodeChecked('ReceiveStepReply', encode({ ok: true, fromParent: true }))).toBeDefined();
    expect(decodeChecked('ReceiveStepReply', encode({ ok: true, fromParent: 'yes' }))).toBeUndefined();
  });

  it('replies - either answer shape, nothing in between', () => {
    expect(decodeChecked('InvokeReply', encode({ ok: false, error: { code: 'guest_trap', message: 'boom' } }))).toBeDefined();
    expect(decodeChecked('InvokeReply', encode({ ok: false, error: { code: 'no_such_code', message: 'boom' } }))).toBeUndefined();
    expect(decodeChecked('InvokeReply', encode({ ok: true, error: { code: 'internal', message: 'x' } }))).toBeUndefined();
  });

  it('unknown fields - dropped from the value handed on', () => {
    const back = decodeChecked('PlaceRequest', encode({ requestId: 'r', tenant: 't', name: 'n', digest: 'd', extra: 'x'.repeat(100) }));
    expect(back).toEqual({ requestId: 'r', tenant: 't', name: 'n', digest: 'd' });
    // In an array's elements and a map's values too: each is handed on as parsed.
    const report = decodeChecked('ServiceLoadReport', encode({ gateway: 'g', at: 1, services: [{ tenant: 't', service: 's', held: 0, instances: { i: 1 }, extra: 'x' }] }));
    expect(report?.services).toEqual([{ tenant: 't', service: 's', held: 0, instances: { i: 1 } }]);
  });

  it('subject table - each pattern covers the subjects protocol.ts builds', () => {
    const built: Record<SubjectKind, string> = {
      place: Subjects.place('h'), drain: Subjects.drain('h'), openCalls: Subjects.openCalls('h'), invoke: Subjects.invoke('t', 'n', 'ab'.repeat(32)), snapshot: Subjects.snapshot('h'),
      fork: Subjects.fork('h'), release: Subjects.release('h'), parentFreed: Subjects.parentFreed('t'), pageRequests: Subjects.pageRequests('t', 's'),
      pages: Subjects.pages('t', 's'), unicastPages: `${Subjects.unicastPages('t', 's', 'h')}.INBOXID`, event: Subjects.event('t', 'host.up'),
      hostReconnected: Subjects.event('system', 'host.reconnected'),
      cancel: JobSubjects.cancel('h'), split: JobSubjects.split('h'), results: JobSubjects.result('t', 'j', 3), failures: `${JobSubjects.attemptFailures('t', 'j.a1')}.3`,
      progress: JobSubjects.progress('t', 'j'), tasks: JobSubjects.tasks('t', 'j'), jobEvents: JobSubjects.events('t', 'j'), jobControl: JobSubjects.control, forkResults: 'flurry.fork.INBOXID',
      reduceResult: 'flurry.reduce.INBOXID', createInstance: ServiceSubjects.create('h'), destroyInstance: ServiceSubjects.destroy('h'),
      serviceRequest: ServiceSubjects.request('t', 's', 'i'), standby: ServiceSubjects.standby('h'), migrate: MigrationSubjects.migrate('h'),
      receive: MigrationSubjects.receive('h'), direct: MigrationSubjects.direct('h', 'i'), load: ControllerSubjects.load,
      controllerDrain: ControllerSubjects.drain, controllerExiting: ControllerSubjects.exiting('h'), hostState: ControllerSubjects.hostState('h'),
      guestLogs: GuestLogSubjects.clone('t', 'j', 3),
    };
    const matches = (pattern: string, subject: string) => {
      const p = pattern.split('.');
      const s = subject.split('.');
      return p.every((t, i) => t === '>' ? i < s.length : t === '*' ? s[i] !== undefined : t === s[i]) && (p.at(-1) === '>' || p.length === s.length);
    };
    for (const [kind, subject] of Object.entries(built)) expect(matches(SubjectTable[kind as SubjectKind].pattern, subject), `${kind}: ${subject}`).toBe(true);
    // And no pattern takes another listener's subjects for its own (jobEvents and hostReconnected lie inside event by design).
    for (const [kind, subject] of Object.entries(built)) {
      const others = Object.entries(SubjectTable).filter(([k, e]) => k !== kind && k !== 'event' && kind !== 'event' && matches(e.pattern, subject)).map(([k]) => k);
      expect(others, `${kind}: ${subject}`).toEqual([]);
    }
  });

  it('subject table - every subject names message kinds that have schemas and byte limits', () => {
    for (const [subject, entry] of Object.entries(SubjectTable)) {
      for (const kind of [entry.request, 'reply' in entry ? entry.reply : undefined]) {
        if (kind === undefined) continue;
        expect(MessageSchemas[kind], `${subject}: ${kind}`).toBeDefined();
        expect(MessageByteLimits[kind], `${subject}: ${kind}`).toBeGreaterThan(0);
      }
    }
  });
});
