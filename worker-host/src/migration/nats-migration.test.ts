/**
 * The NATS migration protocol between two in-process pools over a real
 * nats-server, with faults injected at the target's subscription: a commit
 * whose answer is lost (dropped, garbled), a commit lost on its way, a
 * target gone for good or silent after the commit, a page applied twice.
 * After each: exactly one owner (or, when nobody could tell, none — never
 * two), and the owner's state is the replay of every answered request.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { createLogger, decode, decodeChecked, encode, MigrationSubjects, refusal, toWireError, whyMalformed, type KeptReply, type ReceiveStep, type ReceiveStepReply, type RequestSample } from '@flurry/core';
import { startNatsServer, type RunningNatsServer } from '../../../infra/src/nats-server.js';
import { GuestPool, type CallResult, type HttpRequestData } from '../guest/guest-pool.js';
import { InstanceSource } from './instance-source.js';
import { MigrationReceiver } from './migration-receiver.js';
import { APPLY_REPLY_BYTES, COMMIT_REPLY_BYTES, NatsTarget, type NatsTargetOptions } from './nats-target.js';
import { keptReplyBytes } from '../reply-table.js';
import { CHUNK_BYTES } from './wire-pages.js';
import { StreamFrame } from './page-stream.js';
import { precopy, type PrecopyReport } from './precopy.js';

const BUILD = new URL('../../../functions/build/', import.meta.url);
const missing = !existsSync(new URL('room.wasm', BUILD));
if (missing) console.warn('nats-migration.test.ts skipped: functions/build lacks room (build it with "node functions/build.mjs")');

const TARGET = 'target-host';
const bytes = (s: string) => new TextEncoder().encode(s);
const json = (r: CallResult) => JSON.parse(new TextDecoder().decode(r.body)) as Record<string, any>;
const req = (method: string, path: string, body?: unknown): HttpRequestData => ({ method, path, query: '', headers: [], body: body === undefined ? new Uint8Array(0) : bytes(JSON.stringify(body)) });
/** Steps answer in ms here: a commit answer lost costs one step timeout before the source asks. */
const OPTS: NatsTargetOptions = { stepTimeoutMs: 3000, prepareTimeoutMs: 9000, outcomeTimeoutMs: 20_000 };

/** What the target's subscription does with one step: `deliver` hands it to the receiver, `respond` answers the source. */
type Hook = (step: ReceiveStep['step'], deliver: () => Promise<Uint8Array>, respond: (reply: Uint8Array) => void, data: Uint8Array) => void;
const passThrough: Hook = (_s, deliver, respond) => void deliver().then(respond);

describe.skipIf(missing)('migration over NATS - faults at the commit', () => {
  let nats: RunningNatsServer;
  let dir: string;
  let snc: NatsConnection;
  let tnc: NatsConnection;
  let source: GuestPool;
  let target: GuestPool;
  let receiver: MigrationReceiver;
  let sub: Subscription | undefined;
  let hook: Hook = passThrough;
  /** The target's pool id of the instance it adopted at a commit. */
  let adopted: string | undefined;
  /** The kept replies the target adopted with it, and those it kept before (apply and quiesce steps). */
  let adoptedReplies: KeptReply[] | undefined;
  let keptBefore: KeptReply[] = [];
  /** The request samples the target was given to warm its code with (quiesce). */
  let warmed: RequestSample[] = [];
  let n = 0;

  /** The receiver's answer to a step as the host's subscription gives it (serve: a malformed step is refused before the receiver). */
  const answer = async (data: Uint8Array): Promise<Uint8Array> => {
    const step = decodeChecked('ReceiveStep', data);
    if (!step) return encode(refusal('receive', { code: 'bad_request', message: `malformed ReceiveStep: ${whyMalformed('ReceiveStep', data)}` }));
    return encode(await receiver.answer(step).catch((err: unknown): ReceiveStepReply => ({ ok: false, error: toWireError(err) })));
  };

  const subscribe = () => {
    sub = tnc.subscribe(MigrationSubjects.receive(TARGET), {
      callback: (_e, msg) => hook(decode<ReceiveStep>(msg.data).step, () => answer(msg.data), (r) => msg.respond(r), msg.data),
    });
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flurry-nats-migration-'));
    nats = await startNatsServer({ dataDir: dir });
    [snc, tnc] = await Promise.all([connect({ servers: nats.url }), connect({ servers: nats.url })]);
    const limits = { callTimeoutMs: 5000, initTimeoutMs: 30_000, maxOutputBytes: 1 << 22, maxLogLines: 64, maxLogBytes: 65536 };
    const log = createLogger('test', {}, 'silent');
    [source, target] = await Promise.all([GuestPool.start({ threads: 1, limits, log }), GuestPool.start({ threads: 1, limits, log })]);
    const room = new Uint8Array(readFileSync(new URL('room.wasm', BUILD)));
    const init = bytes(JSON.stringify({ ballastMiB: 4 }));
    await Promise.all([source.warm('room', room, init), target.warm('room', room, init)]);
    receiver = new MigrationReceiver({
      hostId: TARGET, pool: target, log,
      acquireParent: async () => 'room',
      releaseParent: () => undefined,
      keepReplies: (_id, replies) => void keptBefore.push(...replies),
      forgetReplies: () => void (keptBefore = []),
      warm: async (_key, samples) => void warmed.push(...samples),
      adopt: async (r) => void ((adopted = r.poolId), (adoptedReplies = r.replies)),
      drop: () => void (adopted = undefined),
    });
    subscribe();
  }, 60_000);

  afterEach(() => {
    hook = passThrough;
    if (!sub || sub.isClosed()) subscribe();
    for (const i of target.instances()) target.destroyInstance(i.instanceId);
    for (const i of source.instances()) source.destroyInstance(i.instanceId);
    adopted = undefined;
    adoptedReplies = undefined;
    keptBefore = [];
    warmed = [];
  });

  afterAll(async () => {
    await Promise.all([snc?.close(), tnc?.close()]);
    await Promise.all([source?.close(), target?.close()]);
    await nats?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /**
   * A room instance on the source, a client sending /say without pause to
   * whichever pool owns it, and one migration to the target as service-host
   * drives it. Resolves with the migration's result and the client's record.
   */
  async function migrateUnderLoad(opts: Partial<NatsTargetOptions> = {}, keptReplies?: NatsTarget['keptReplies']) {
    const src = await source.createInstance('room');
    const sent: HttpRequestData[] = [req('POST', '/join', { name: 'ada' })];
    await source.instanceHandle(src, sent[0]!, `c${n++}`);
    let owner: { pool: GuestPool; id: string } = { pool: source, id: src };
    let running = true;
    let seq = 0;
    const failures: string[] = [];
    const loop = (async () => {
      for (let k = 0; running; k++) {
        const r = req('POST', '/say', { name: 'ada', text: `m${k}`.padEnd(2048, '.') });
        try {
          const answer = json(await owner.pool.instanceHandle(owner.id, r, `c${n++}`));
          sent.push(r);
          expect(answer).toEqual({ seq: ++seq });
        } catch (err) {
          // Only where nobody can tell the outcome: the held requests fail with the instance let go.
          failures.push((err as Error).message);
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      }
    })();
    while (seq < 5) await new Promise((r) => setTimeout(r, 2));
    const migrationId = `mig-${n++}`;
    const natsTarget = new NatsTarget(snc, TARGET, { migrationId, requestId: migrationId, tenant: 't', service: 'room', instanceId: src, name: 'room', digest: 'd' }, { ...OPTS, ...opts });
    natsTarget.keptReplies = keptReplies;
    natsTarget.samples = () => [sent[0]!];
    const instanceSource = await InstanceSource.begin(source, src, {
      modes: ['compare'],
      onCommit: (held) => {
        const to = adopted;
        if (to) owner = { pool: target, id: to };
        for (const h of held) h.forward(to ? target.instanceHandle(to, h.request, h.callId) : Promise.reject(new Error('nobody serves the instance')));
      },
    });
    let result: { report: PrecopyReport } | { error: Error };
    try {
      result = { report: await precopy(instanceSource, natsTarget, { downtimeBudgetMs: 5 }) };
    } catch (err) {
      result = { error: err as Error };
    }
    const after = seq;
    while (seq < after + 5 && failures.length === 0) await new Promise((r) => setTimeout(r, 2));
    running = false;
    await loop;
    return { ...result, src, migrationId, sent, failures, owner: () => owner };
  }

  /** The pools that hold a serving instance: the source's own, the target's adopted one. */
  function owners(src: string): string[] {
    return [
      ...(source.instances().some((i) => i.instanceId === src && !i.migrating) ? ['source'] : []),
      ...(target.instances().some((i) => i.instanceId === adopted && !i.migrating) ? ['target'] : []),
    ];
  }

  /** The owner's state digest equals a fresh instance's after the same answered requests. */
  async function expectReplayed(owner: { pool: GuestPool; id: string }, sent: HttpRequestData[]): Promise<void> {
    const state = json(await owner.pool.instanceHandle(owner.id, req('GET', '/state'), `s${n++}`));
    const fresh = await source.createInstance('room');
    for (const r of sent) await source.instanceHandle(fresh, r, `r${n++}`);
    const replayed = json(await source.instanceHandle(fresh, req('GET', '/state'), `r${n++}`));
    source.destroyInstance(fresh);
    expect(state.seq).toBe(sent.length - 1);
    expect(state.digest).toBe(replayed.digest);
  }

  it('commit - pages sent = pages applied, reported; the target owns the instance; a request handed over before the commit runs there once it took effect', async () => {
    let handedBefore: Promise<string> | undefined;
    hook = (step, deliver, respond, data) => {
      // As a request the source hands over right behind the commit, arriving first: it waits for the migration's end.
      if (step === 'commit') handedBefore = receiver.settled(decode<ReceiveStep>(data).migrationId, source.instances()[0]!.instanceId);
      void deliver().then(respond);
    };
    const m = await migrateUnderLoad();
    if ('error' in m) throw m.error;
    await expect(handedBefore).resolves.toBe('committed');
    await expect(receiver.settled(m.migrationId, 'another-instance')).rejects.toThrow(/no migration .* of instance another-instance/);
    await expect(receiver.settled('mig-unknown', m.src)).rejects.toThrow(/no migration mig-unknown/);
    // The target was given the source's samples before the commit, to warm its code with.
    expect(warmed.map((r) => r.path)).toEqual(['/join']);
    expect(m.report.pagesSent).toBeGreaterThan(1024);
    expect(m.report.pagesApplied).toBe(m.report.pagesSent);
    expect(m.report.outcomeAsked).toBeUndefined();
    expect(owners(m.src)).toEqual(['target']);
    await expectReplayed(m.owner(), m.sent);
  });

  it('kept replies - the source\'s kept replies reach the target once each: small ones with the rounds\' apply steps, the rest (newest first, COMMIT_REPLY_BYTES at a time) at the quiesce step and those kept since with the commit, which stays under the broker\'s 1 MiB', async () => {
    const reply = (id: string, size: number): KeptReply => ({ requestId: id, ageMs: 10, reply: { ok: true, status: 200, headers: [], body: new Uint8Array(size).fill(id.length), hostId: 'source', durationMs: 1 } });
    let asked: number | undefined;
    let commitBytes = 0;
    const applyBatches: number[] = [];
    hook = (step, deliver, respond, data) => {
      if (step === 'commit') commitBytes = data.length;
      if (step === 'apply') {
        const replies = (decode<ReceiveStep>(data) as Extract<ReceiveStep, { step: 'apply' }>).replies;
        if (replies) applyBatches.push(replies.reduce((n, r) => n + keptReplyBytes(r), 0));
      }
      void deliver().then(respond);
    };
    // Each time it is asked the source has kept a small reply and one too large to ride with pages (the table's
    // 2 × calls replies, newest first, numbered in the order kept); asked for the newest since the last `through`.
    let table: KeptReply[] = [];
    let calls = 0;
    const afters: number[] = [];
    const m = await migrateUnderLoad({}, (maxBytes, after) => {
      asked = maxBytes;
      afters.push(after);
      calls++;
      table = [reply(`small-${calls}`, 1024), reply(`big-${calls}`, 200 * 1024), ...table];
      let bytes = 0;
      const replies = table.slice(0, 2 * calls - after).filter((r) => (bytes + keptReplyBytes(r) <= maxBytes ? ((bytes += keptReplyBytes(r)), true) : false));
      return { replies, through: 2 * calls };
    });
    if ('error' in m) throw m.error;
    expect(asked).toBe(COMMIT_REPLY_BYTES);
    // Each step reads only what was kept since the step before.
    expect(afters).toEqual(Array.from({ length: calls }, (_, i) => 2 * i));
    const received = [...keptBefore, ...adoptedReplies!].map((r) => r.requestId);
    expect(new Set(received).size).toBe(received.length);
    // Every small one arrived, the first ones with apply steps, each batch within APPLY_REPLY_BYTES.
    expect(new Set(received)).toEqual(new Set([...received.filter((id) => id.startsWith('big-')), ...Array.from({ length: calls }, (_, i) => `small-${i + 1}`)]));
    expect(applyBatches.length).toBeGreaterThan(0);
    expect(Math.max(...applyBatches)).toBeLessThanOrEqual(APPLY_REPLY_BYTES);
    // The large ones at the quiesce step after round 0 (the newest that fit) and, those kept since that fit, with the commit.
    expect(keptBefore.some((r) => r.requestId.startsWith('big-'))).toBe(true);
    const sentBefore = new Set(keptBefore.map((r) => r.requestId));
    expect(adoptedReplies?.map((r) => [r.requestId, r.reply.ok && r.reply.body.length])).toEqual([
      [`small-${calls}`, 1024], [`big-${calls}`, 200 * 1024], ...(sentBefore.has(`big-${calls - 1}`) ? [] : [[`big-${calls - 1}`, 200 * 1024]]),
    ]);
    expect(commitBytes).toBeGreaterThan(200 * 1024);
    expect(commitBytes).toBeLessThan(CHUNK_BYTES + 64 * 1024);
    expect(owners(m.src)).toEqual(['target']);
    await expectReplayed(m.owner(), m.sent);
  });

  it.each(['dropped', 'garbled'] as const)('commit answer %s - the target committed; the source stays stopped, asks, then lets go and its held requests are answered by the target', async (fault) => {
    let stoppedWhenAsked: string | undefined;
    hook = (step, deliver, respond) => {
      if (step === 'status') stoppedWhenAsked = source.instances()[0]?.migrating;
      void deliver().then((reply) => {
        if (step !== 'commit') respond(reply);
        else if (fault === 'garbled') respond(encode({ ok: 'yes' }));
      });
    };
    const m = await migrateUnderLoad();
    if ('error' in m) throw m.error;
    expect(stoppedWhenAsked).toBe('stopped');
    expect(m.report).toMatchObject({ outcomeAsked: true, pagesApplied: m.report.pagesSent });
    expect(m.failures).toEqual([]);
    expect(owners(m.src)).toEqual(['target']);
    await expectReplayed(m.owner(), m.sent);
  });

  it('commit lost on its way - asked, the target marks the migration refused; the source resumes; the commit arriving late is refused', async () => {
    let lateCommit: (() => Promise<Uint8Array>) | undefined;
    let handed: Promise<string> | undefined;
    hook = (step, deliver, respond, data) => {
      if (step === 'commit') {
        lateCommit = deliver;
        // A request handed over behind the lost commit waits, and is dropped once the migration is refused.
        handed = receiver.settled(decode<ReceiveStep>(data).migrationId, source.instances()[0]!.instanceId);
      } else void deliver().then(respond);
    };
    const m = await migrateUnderLoad();
    expect('error' in m && m.error.message).toMatch(/did not take the instance: the source asked for the outcome before any commit took effect/);
    await expect(handed).resolves.toBe('refused');
    expect(m.failures).toEqual([]);
    expect(owners(m.src)).toEqual(['source']);
    const late = decode<ReceiveStepReply>(await lateCommit!());
    expect(late).toMatchObject({ ok: false, error: { code: 'conflict', message: expect.stringMatching(/ended already .*\(refused\)/) } });
    expect(owners(m.src)).toEqual(['source']);
    expect(target.instances()).toEqual([]);
    await expectReplayed(m.owner(), m.sent);
  });

  it('target gone for good - after a lost commit answer nobody subscribes: no responders for a while, and the source resumes', async () => {
    hook = (step, deliver, respond) => {
      // The process dies with the commit in hand: nothing answers any more.
      if (step === 'commit') sub!.unsubscribe();
      else void deliver().then(respond);
    };
    const m = await migrateUnderLoad();
    expect('error' in m && m.error.message).toMatch(/is gone \(no responders for \d+ ms after the commit's answer was lost\)/);
    expect(owners(m.src)).toEqual(['source']);
    await expectReplayed(m.owner(), m.sent);
  });

  it('nobody can tell - a target that answers nothing after the commit: the source lets go without resuming (one owner or none, never two)', async () => {
    hook = (step, deliver, respond) => {
      if (step !== 'commit' && step !== 'status') void deliver().then(respond);
    };
    const m = await migrateUnderLoad({ outcomeTimeoutMs: 1500 });
    expect('error' in m && m.error.message).toMatch(/is unknown after 1500 ms/);
    expect(owners(m.src)).toEqual([]);
    // The requests held in the pause went where the instance may be, and failed there.
    expect(m.failures.length).toBeGreaterThan(0);
  });

  it('page count - a chunk applied twice: the target refuses the commit, naming both counts; the source resumes with its state whole', async () => {
    let doubled = false;
    hook = (step, deliver, respond) => {
      if (step === 'apply' && !doubled) {
        doubled = true;
        void deliver().then(() => deliver().then(respond));
      } else void deliver().then(respond);
    };
    const m = await migrateUnderLoad();
    expect('error' in m && m.error.message).toMatch(/commit of migration \S+ is refused: host target-host wrote (\d+) pages into the instance, the source sent \d+/);
    const [, wrote, sentPages] = /wrote (\d+) pages .* sent (\d+)/.exec((m as { error: Error }).error.message)!;
    expect(Number(wrote)).toBeGreaterThan(Number(sentPages));
    expect(owners(m.src)).toEqual(['source']);
    expect(target.instances()).toEqual([]);
    // The refusal is remembered: asked afterwards, the target says refused.
    const status = decode<ReceiveStepReply>((await snc.request(MigrationSubjects.receive(TARGET), encode({ step: 'status', migrationId: m.migrationId } satisfies ReceiveStep))).data);
    expect(status).toMatchObject({ ok: true, outcome: 'refused', reason: expect.stringMatching(/wrote \d+ pages/) });
    await expectReplayed(m.owner(), m.sent);
  });

  it('source silent - a target that stops hearing a prepared migration\'s source ends it: its instance and parent let go, a request handed over refused, a late probe told so', async () => {
    let released = 0;
    const quiet = new MigrationReceiver({
      hostId: 'quiet-target', pool: target, log: createLogger('test', {}, 'silent'), sourceSilentMs: 400,
      acquireParent: async () => 'room', releaseParent: () => void released++,
      keepReplies: () => undefined, forgetReplies: () => undefined, warm: async () => undefined, adopt: async () => undefined, drop: () => undefined,
    });
    const migrationId = `silent-${n++}`;
    await quiet.answer({ step: 'prepare', migrationId, requestId: migrationId, tenant: 't', service: 'room', instanceId: 'i-silent', name: 'room', digest: 'd', memoryBytes: 1 << 20 });
    expect(target.instances()).toHaveLength(1);
    const handedOver = quiet.settled(migrationId, 'i-silent');
    // Heard: probes keep it alive past the silence bound.
    for (let k = 0; k < 10; k++) {
      await new Promise((r) => setTimeout(r, 50));
      expect(await quiet.answer({ step: 'ping', migrationId })).toEqual({ ok: true });
    }
    expect(target.instances()).toHaveLength(1);
    // Then nothing: the source is gone. Bounded by the receiver's own silence check, not by this test.
    expect(await handedOver).toBe('refused');
    expect(target.instances()).toEqual([]);
    expect(released).toBe(1);
    await expect(quiet.answer({ step: 'ping', migrationId })).rejects.toThrow(/not heard for/);
  });

  /** The prepare step with its page stream offer changed by `change` (a proxy, a closed port), answered by the receiver. */
  const rewritePrepare = (change: (offer: { host: string; port: number; token: Uint8Array }) => void): Hook => (step, deliver, respond, data) => {
    if (step !== 'prepare') return void deliver().then(respond);
    const s = decode<Extract<ReceiveStep, { step: 'prepare' }>>(data);
    if (s.stream) change(s.stream);
    void answer(encode(s)).then(respond);
  };

  it('page stream - the rounds\' pages, the last ones and the commit go on the stream, none in an apply step and no commit step over NATS; one quiesce step (only to warm: nothing to collect); pages sent = applied; the target owns the instance', async () => {
    let streamed: boolean | undefined;
    let applyPages = 0;
    let quiesced = 0;
    let commit: Extract<ReceiveStep, { step: 'commit' }> | undefined;
    hook = (step, deliver, respond, data) => {
      if (step === 'quiesce') quiesced++;
      if (step === 'commit') commit = decode(data);
      if (step === 'apply') applyPages += (decode<Extract<ReceiveStep, { step: 'apply' }>>(data)).pages.length / 4;
      void deliver().then((reply) => {
        if (step === 'prepare') streamed = decode<ReceiveStepReply & { stream?: boolean }>(reply).stream;
        respond(reply);
      });
    };
    const m = await migrateUnderLoad({ pageStream: { host: '127.0.0.1' } });
    if ('error' in m) throw m.error;
    expect(streamed).toBe(true);
    expect(applyPages).toBe(0);
    expect(m.report.rounds.length).toBeGreaterThan(1);
    expect(quiesced).toBe(1);
    // The client writes without pause: the stop has pages, and they went on the stream too, with the commit.
    expect(m.report.finalPages).toBeGreaterThan(0);
    expect(commit).toBeUndefined();
    expect(m.report.downtime.commitOutMs).toBeGreaterThanOrEqual(0);
    expect(m.report.pagesSent).toBeGreaterThan(1024);
    expect(m.report.pagesApplied).toBe(m.report.pagesSent);
    expect(owners(m.src)).toEqual(['target']);
    await expectReplayed(m.owner(), m.sent);
  });

  it('page stream unreachable - the target cannot connect: it answers the prepare without the stream and the pages go as apply steps', async () => {
    const closed = createServer();
    await new Promise<void>((res) => closed.listen(0, '127.0.0.1', res));
    const { port } = closed.address() as { port: number };
    await new Promise((res) => closed.close(res));
    let applyPages = 0;
    const rewrite = rewritePrepare((offer) => (offer.port = port));
    hook = (step, deliver, respond, data) => {
      if (step === 'apply') applyPages += (decode<Extract<ReceiveStep, { step: 'apply' }>>(data)).pages.length / 4;
      rewrite(step, deliver, respond, data);
    };
    const m = await migrateUnderLoad({ pageStream: { host: '127.0.0.1' } });
    if ('error' in m) throw m.error;
    expect(applyPages).toBeGreaterThan(1024);
    expect(m.report.pagesApplied).toBe(m.report.pagesSent);
    expect(owners(m.src)).toEqual(['target']);
    await expectReplayed(m.owner(), m.sent);
  });

  /** A proxy between the stream's two ends; `cutAt` sees the type of each frame the target sends, and may cut both ends before it is relayed. */
  async function streamProxy(cutAt: (type: number) => boolean) {
    let realPort = 0;
    let cut = false;
    const proxy = createServer((inbound) => {
      const out = netConnect(realPort, '127.0.0.1');
      inbound.on('error', () => undefined);
      out.on('error', () => undefined);
      out.pipe(inbound);
      let pending = Buffer.alloc(0);
      inbound.on('data', (d: Buffer) => {
        pending = Buffer.concat([pending, d]);
        while (pending.length >= 9 && pending.length >= 4 + pending.readUInt32BE(0)) {
          const len = 4 + pending.readUInt32BE(0);
          if (cutAt(pending[4]!)) {
            cut = true;
            inbound.destroy();
            out.destroy();
            return;
          }
          out.write(pending.subarray(0, len));
          pending = pending.subarray(len);
        }
      });
    });
    await new Promise<void>((res) => proxy.listen(0, '127.0.0.1', res));
    closeAfter.push(() => proxy.close());
    const rewrite = rewritePrepare((offer) => {
      realPort = offer.port;
      offer.port = (proxy.address() as { port: number }).port;
    });
    return { rewrite, wasCut: () => cut };
  }
  const closeAfter: (() => void)[] = [];
  afterEach(() => {
    for (const c of closeAfter.splice(0)) c();
  });

  it('page stream commit answer lost - the stream breaks after the commit went on it: the source stays stopped, asks over NATS, learns it committed and lets go; the target owns the instance', async () => {
    let asked = 0;
    const proxy = await streamProxy((type) => type === StreamFrame.answer);
    hook = (step, deliver, respond, data) => {
      if (step === 'status') asked++;
      proxy.rewrite(step, deliver, respond, data);
    };
    const m = await migrateUnderLoad({ pageStream: { host: '127.0.0.1' } });
    if ('error' in m) throw m.error;
    expect(proxy.wasCut()).toBe(true);
    expect(m.report.outcomeAsked).toBe(true);
    expect(asked).toBeGreaterThan(0);
    expect(m.report.pagesApplied).toBe(m.report.pagesSent);
    expect(owners(m.src)).toEqual(['target']);
    await expectReplayed(m.owner(), m.sent);
  });

  it('page stream commit - a malformed step, or another migration\'s, on a migration\'s stream is refused on the stream, saying why', async () => {
    const answers: ReceiveStepReply[] = [];
    for (const [migrationId, commit] of [['mig-bad-1', encode({ step: 'commit', pages: 'no' })], ['mig-bad-2', encode({ step: 'abort', migrationId: 'mig-other' })]] as const) {
      // A fake source: welcomes the receiver's connection, and answers come back on it.
      let conn: import('node:net').Socket | undefined;
      const answered = new Promise<ReceiveStepReply>((resolve) => {
        const server = createServer((socket) => {
          conn = socket;
          socket.on('error', () => undefined);
          let got = Buffer.alloc(0);
          socket.once('data', () => {
            socket.write(Buffer.from([0, 0, 0, 5, StreamFrame.welcome, 0, 0, 0, 0]));
            socket.on('data', (d: Buffer) => {
              got = Buffer.concat([got, d]);
              if (got.length >= 9 && got.length >= 4 + got.readUInt32BE(0) && got[4] === StreamFrame.answer) resolve(decode<ReceiveStepReply>(got.subarray(9, 4 + got.readUInt32BE(0))));
            });
          });
        });
        closeAfter.push(() => server.close());
        server.listen(0, '127.0.0.1', () => {
          const port = (server.address() as { port: number }).port;
          const prepare: ReceiveStep = { step: 'prepare', migrationId, requestId: migrationId, tenant: 't', service: 'room', instanceId: `i-${migrationId}`, name: 'room', digest: 'd', memoryBytes: 4 << 20, stream: { host: '127.0.0.1', port, token: new Uint8Array(32) } };
          void answer(encode(prepare)).then((reply) => {
            expect(decode<ReceiveStepReply>(reply)).toMatchObject({ ok: true, stream: true });
            const f = Buffer.alloc(9 + commit.length);
            f.writeUInt32BE(5 + commit.length, 0);
            f[4] = StreamFrame.commit;
            f.set(commit, 9);
            conn!.write(f);
          });
        });
      });
      answers.push(await answered);
      await answer(encode({ step: 'abort', migrationId } satisfies ReceiveStep));
    }
    expect(answers[0]).toMatchObject({ ok: false, error: { code: 'bad_request', message: expect.stringMatching(/^malformed ReceiveStep: /) } });
    expect(answers[1]).toMatchObject({ ok: false, error: { code: 'bad_request', message: expect.stringMatching(/carried a abort step of migration mig-other: only its own commit goes there/) } });
  });

  it('page stream breaks - cut mid-round: the step in progress fails at once, the target drops what it received, the source resumes with its state whole', async () => {
    // A proxy between the two ends that cuts the connection after 3 MiB from the source.
    let cut = false;
    const proxy = createServer((inbound) => {
      const out = netConnect(realPort, '127.0.0.1');
      let relayed = 0;
      inbound.on('error', () => undefined);
      out.on('error', () => undefined);
      inbound.pipe(out);
      out.on('data', (d: Buffer) => {
        relayed += d.length;
        if (relayed > 3 << 20) {
          cut = true;
          inbound.destroy();
          out.destroy();
        } else inbound.write(d);
      });
    });
    await new Promise<void>((res) => proxy.listen(0, '127.0.0.1', res));
    let realPort = 0;
    hook = rewritePrepare((offer) => {
      realPort = offer.port;
      offer.port = (proxy.address() as { port: number }).port;
    });
    try {
      const m = await migrateUnderLoad({ pageStream: { host: '127.0.0.1' } });
      expect(cut).toBe(true);
      expect('error' in m && m.error.message).toMatch(/page stream to target host target-host broke/);
      expect(m.failures).toEqual([]);
      expect(owners(m.src)).toEqual(['source']);
      expect(target.instances()).toEqual([]);
      // The target ended it: asked, it says refused, naming the stream.
      const status = decode<ReceiveStepReply>((await snc.request(MigrationSubjects.receive(TARGET), encode({ step: 'status', migrationId: m.migrationId } satisfies ReceiveStep))).data);
      expect(status).toMatchObject({ ok: true, outcome: 'refused', reason: expect.stringMatching(/page stream broke|aborted/) });
      await expectReplayed(m.owner(), m.sent);
    } finally {
      proxy.close();
    }
  });

  it('bad step - a malformed step is refused with bad_request and changes nothing', async () => {
    const reply = decode<ReceiveStepReply>(await answer(encode({ step: 'commit', migrationId: 'm', pages: 'no' })));
    expect(reply).toMatchObject({ ok: false, error: { code: 'bad_request', message: expect.stringMatching(/^malformed ReceiveStep: /) } });
    expect(decode<ReceiveStepReply>(await answer(encode({ step: 'steal', migrationId: 'm' })))).toMatchObject({ ok: false, error: { code: 'bad_request' } });
  });
});
