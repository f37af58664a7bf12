/** Live migration of a persistent instance between two pools (in-process): pre-copy rounds, stop-and-copy, commit or abort. */
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@flurry/core';
import { loadNativePager, nativePagerStatus } from '../native/pager.js';
import { InstanceSource } from '../migration/instance-source.js';
import { InstanceTarget } from '../migration/instance-target.js';
import { precopy, type PrecopyReport } from '../migration/precopy.js';
import { GuestPool, type CallResult, type HttpRequestData, type MigrationMode } from './guest-pool.js';

const BUILD = new URL('../../../functions/build/', import.meta.url);
const missing = !existsSync(new URL('room.wasm', BUILD));
if (missing) console.warn('migration.test.ts skipped: functions/build lacks room (build it with "node functions/build.mjs")');

const bytes = (s: string) => new TextEncoder().encode(s);
const json = (r: CallResult) => JSON.parse(new TextDecoder().decode(r.body)) as Record<string, any>;
const MiB = 1024 * 1024;
const BALLAST_MIB = 16;
const CHURN = 64 * 1024;

const status = nativePagerStatus();
const caps = status.available ? loadNativePager().capabilities() : undefined;
const nativeDirty = caps?.writeProtect && caps.wpUnpopulated ? { async: !!(caps.wpAsync && caps.pagemapScan), sync: true } : { async: false, sync: false };
const MODES: MigrationMode[] = ['async', 'sync', 'compare'];
for (const mode of ['async', 'sync'] as const) if (!nativeDirty[mode]) console.warn(`[migration] skipping '${mode}' dirty tracking: the native pager cannot do it here (${status.reason ?? caps?.reason ?? 'no WP support'})`);

function req(method: string, path: string, body?: unknown): HttpRequestData {
  return { method, path, query: '', headers: [], body: body === undefined ? new Uint8Array(0) : bytes(JSON.stringify(body)) };
}

describe.skipIf(missing)(`live migration (room, ${BALLAST_MIB} MiB ballast)`, () => {
  let source: GuestPool;
  let target: GuestPool;
  let n = 0;

  beforeAll(async () => {
    const limits = { callTimeoutMs: 5000, initTimeoutMs: 30_000, maxOutputBytes: 4 * MiB, maxLogLines: 64, maxLogBytes: 65536 };
    const log = createLogger('test', {}, 'silent');
    [source, target] = await Promise.all([GuestPool.start({ threads: 2, limits, log }), GuestPool.start({ threads: 2, limits, log })]);
    const room = new Uint8Array(readFileSync(new URL('room.wasm', BUILD)));
    const init = bytes(JSON.stringify({ ballastMiB: BALLAST_MIB }));
    await Promise.all([source.warm('room', room, init), target.warm('room', room, init)]);
  });
  afterAll(async () => {
    await source?.close();
    await target?.close();
  });

  /** A fresh instance on the source pool replaying `requests`: the state they must lead to. */
  async function replayDigest(requests: HttpRequestData[]): Promise<string> {
    const id = await source.createInstance('room');
    for (const r of requests) await source.instanceHandle(id, r, `replay${n++}`);
    const digest = json(await source.instanceHandle(id, req('GET', '/state'), `replay${n++}`)).digest as string;
    source.destroyInstance(id);
    return digest;
  }

  /** Begins migrating `src` (compare) and sends its round 0, every slice, into an instance received on the target: its id. */
  async function roundZero(src: string): Promise<string> {
    await source.beginMigration(src, { mode: 'compare' });
    let r0 = await source.migrationRound(src);
    const dst = await target.receiveInstance('room', { memoryBytes: r0.memoryBytes });
    await target.applyPages(dst, r0.pages, r0.bytes, r0.memoryBytes);
    while (r0.more) {
      r0 = await source.migrationRound(src);
      await target.applyPages(dst, r0.pages, r0.bytes, r0.memoryBytes);
    }
    return dst;
  }

  // A mode the native pager cannot do here is skipped (the reason is printed above).
  for (const mode of MODES) it.skipIf(mode !== 'compare' && !nativeDirty[mode])(`migrate (${mode}) - every request during the migration is answered, the state and memory arrive whole`, async () => {
    const src = await source.createInstance('room');
    const setup = [req('POST', '/join', { name: 'ada' }), req('POST', '/say', { name: 'ada', text: 'before' }), req('POST', '/churn', { bytes: MiB })];
    for (const r of setup) expect((await source.instanceHandle(src, r, `s${n++}`)).status).toBe(200);
    const sent: HttpRequestData[] = [];
    // The setup said once and churned 1 MiB.
    let seqBase = 1;
    let owner = { pool: source, id: src };
    const send = (r: HttpRequestData) => owner.pool.instanceHandle(owner.id, r, `loop${n++}`);
    let running = true;
    let k = 0;
    const answered: number[] = [];
    const loop = (async () => {
      while (running) {
        const r = k % 2 === 0 ? req('POST', '/say', { name: 'ada', text: `m${k}` }) : req('POST', '/churn', { bytes: CHURN });
        sent.push(r);
        const answer = await send(r);
        expect(answer.status).toBe(200);
        if (k % 2 === 0) expect(json(answer)).toEqual({ seq: ++seqBase });
        else expect(json(answer).churned).toBe(MiB + ((k + 1) / 2) * CHURN);
        answered.push(k++);
      }
    })();
    let forwarded = 0;
    // Let the loop run a little before the migration starts.
    while (k < 6) await new Promise((r) => setTimeout(r, 5));
    const into = new InstanceTarget(target, 'room', { verify: true });
    const from = await InstanceSource.begin(source, src, {
      modes: [mode],
      verify: true,
      onCommit: (held) => {
        owner = { pool: target, id: into.instanceId! };
        forwarded = held.length;
        for (const h of held) h.forward(target.instanceHandle(into.instanceId!, h.request, h.callId));
      },
    });
    const report: PrecopyReport = await precopy(from, into, { downtimeBudgetMs: 5, maxRounds: 10 });
    const dst = into.instanceId!;
    const hashes = { source: from.memoryAtStop?.hash, target: into.memoryHash };
    // Keep going on the target for a bit, then stop the client.
    const after = k;
    while (k < after + 6) await new Promise((r) => setTimeout(r, 5));
    running = false;
    await loop;
    console.log(`[migration] ${mode}: rounds ${JSON.stringify(report.rounds.map((r) => ({ pages: r.pages, ms: +r.ms.toFixed(1) })))}, stop ${report.stopReason}, final ${report.finalPages} pages, downtime ${report.downtimeMs.toFixed(1)} ms ${JSON.stringify(Object.fromEntries(Object.entries(report.downtime).map(([k, v]) => [k, +v.toFixed(1)])))} (stop and commit include the test's memory hashes), total ${report.totalMs.toFixed(1)} ms, ${(report.totalBytes / MiB).toFixed(1)} MiB; ${answered.length} loop requests, ${forwarded} held and forwarded`);
    expect(hashes.source).toBeDefined();
    expect(hashes.target).toBe(hashes.source);
    // Natively tracked, a copy-on-write clone sends only what it wrote since its fork (1 MiB churned and a few
    // pages of heap before the migration began, not the ballast); comparing, every non-zero page.
    expect(report.fromParent).toBe(mode !== 'compare');
    if (report.fromParent) expect(report.rounds[0]!.pages).toBeLessThan((BALLAST_MIB * MiB) / 4096 / 2);
    else expect(report.rounds[0]!.pages).toBeGreaterThanOrEqual((BALLAST_MIB * MiB) / 4096);
    expect(source.instances().some((i) => i.instanceId === src)).toBe(false);
    // The target's state is the setup and every loop request, each applied once, in order.
    const state = json(await target.instanceHandle(dst, req('GET', '/state'), `st${n++}`));
    expect(state).toMatchObject({ members: ['ada'], seq: seqBase, churned: MiB + Math.floor(k / 2) * CHURN, ballastBytes: BALLAST_MIB * MiB });
    expect(state.digest).toBe(await replayDigest([...setup, ...sent]));
    target.destroyInstance(dst);
  });

  it('slices - a later round larger than a slice is read in slices, each page once, into the buffer handed back; the stop reads what they missed', async () => {
    const mode: MigrationMode = nativeDirty.async ? 'async' : 'compare';
    const src = await source.createInstance('room');
    await source.beginMigration(src, { mode });
    const dst = await target.receiveInstance('room', { memoryBytes: BALLAST_MIB * MiB });
    const slices: { pages: number; more: boolean }[] = [];
    let r = await source.migrationRound(src);
    for (;;) {
      await target.applyPages(dst, r.pages, r.bytes, r.memoryBytes);
      if (!r.more) break;
      r = await source.migrationRound(src, { reuse: r.bytes.buffer as ArrayBuffer });
    }
    // 4 MiB rewritten: round 1 is over a thousand pages, more than a slice.
    await source.instanceHandle(src, req('POST', '/churn', { bytes: 4 * MiB }), `s${n++}`);
    let spare = r.bytes.buffer as ArrayBuffer;
    const seen = new Set<number>();
    do {
      const capacity = spare.byteLength;
      r = await source.migrationRound(src, { reuse: spare });
      // Transferred to the thread, read into and transferred back.
      expect(spare.byteLength).toBe(0);
      expect(r.bytes.buffer.byteLength).toBe(Math.max(capacity, r.bytes.length));
      for (const p of r.pages) {
        expect(seen.has(p)).toBe(false);
        seen.add(p);
      }
      slices.push({ pages: r.pages.length, more: r.more === true });
      await target.applyPages(dst, r.pages, r.bytes, r.memoryBytes);
      // Written between two slices of the round: the stop (or the next round) sends it.
      if (slices.length === 1) await source.instanceHandle(src, req('POST', '/say', { name: 'ada', text: 'between' }), `s${n++}`);
      spare = r.bytes.buffer as ArrayBuffer;
    } while (r.more);
    expect(seen.size).toBeGreaterThanOrEqual((4 * MiB) / 4096);
    expect(slices.length).toBeGreaterThan(1);
    expect(slices.slice(0, -1).every((x) => x.more && x.pages === slices[0]!.pages)).toBe(true);
    const last = await source.stopAndCopy(src, { reuse: spare });
    const memoryAtStop = await source.instanceMemoryHash(src);
    await target.finishReceive(dst, last.globals, last);
    expect((await target.instanceMemoryHash(dst)).hash).toBe(memoryAtStop.hash);
    source.commitMigration(src);
    source.destroyInstance(src);
    target.destroyInstance(dst);
  });

  it('abort - aborting after stop-and-copy leaves the source serving with its state intact; held requests run there', async () => {
    const mode: MigrationMode = nativeDirty.async ? 'async' : 'compare';
    const src = await source.createInstance('room');
    await source.instanceHandle(src, req('POST', '/join', { name: 'ada' }), `a${n++}`);
    await source.instanceHandle(src, req('POST', '/churn', { bytes: MiB }), `a${n++}`);
    const before = json(await source.instanceHandle(src, req('GET', '/state'), `a${n++}`));
    await source.beginMigration(src, { mode });
    const round = await source.migrationRound(src);
    const dst = await target.receiveInstance('room', { memoryBytes: round.memoryBytes });
    await target.applyPages(dst, round.pages, round.bytes, round.memoryBytes);
    await source.stopAndCopy(src);
    // Arrives while stopped: held, not refused.
    const held = source.instanceHandle(src, req('POST', '/say', { name: 'ada', text: 'during' }), `a${n++}`);
    // The target fails before commit.
    target.destroyInstance(dst);
    await source.abortMigration(src);
    expect(json(await held)).toEqual({ seq: 1 });
    const state = json(await source.instanceHandle(src, req('GET', '/state'), `a${n++}`));
    expect(state).toMatchObject({ members: ['ada'], seq: 1, churned: before.churned });
    expect(state.digest).toBe(await replayDigest([req('POST', '/join', { name: 'ada' }), req('POST', '/churn', { bytes: MiB }), req('POST', '/say', { name: 'ada', text: 'during' })]));
    // It can migrate again later, and goes on serving meanwhile.
    await source.beginMigration(src, { mode });
    expect((await source.migrationRound(src)).pages.length).toBeGreaterThan(0);
    expect(json(await source.instanceHandle(src, req('POST', '/say', { name: 'ada', text: 'again' }), `a${n++}`))).toEqual({ seq: 2 });
    expect((await source.migrationRound(src)).pages.length).toBeGreaterThan(0);
    await source.abortMigration(src);
    source.destroyInstance(src);
  });

  it('held requests - requests arriving during stop-and-copy are held, handed back in arrival order and answered by the target', async () => {
    const src = await source.createInstance('room');
    await source.instanceHandle(src, req('POST', '/join', { name: 'ada' }), `h${n++}`);
    await source.beginMigration(src, { mode: 'compare' });
    const r0 = await source.migrationRound(src);
    const dst = await target.receiveInstance('room', { memoryBytes: r0.memoryBytes });
    await target.applyPages(dst, r0.pages, r0.bytes, r0.memoryBytes);
    // Queued before the stop: served by the source, before its last pages are read.
    const early = source.instanceHandle(src, req('POST', '/say', { name: 'ada', text: 'early' }), `h${n++}`);
    const final = source.stopAndCopy(src);
    const late = Array.from({ length: 5 }, (_, i) => source.instanceHandle(src, req('POST', '/say', { name: 'ada', text: `late${i}` }), `late${i}`));
    const last = await final;
    expect(json(await early)).toEqual({ seq: 1 });
    expect(source.instances().find((i) => i.instanceId === src)?.migrating).toBe('stopped');
    expect(target.instances().find((i) => i.instanceId === dst)?.migrating).toBe('target');
    await expect(target.instanceHandle(dst, req('GET', '/state'), `h${n++}`)).rejects.toMatchObject({ code: 'unavailable' });
    await target.finishReceive(dst, last.globals, last);
    const held = source.commitMigration(src);
    expect(held.map((h) => h.callId)).toEqual(['late0', 'late1', 'late2', 'late3', 'late4']);
    for (const h of held) h.forward(target.instanceHandle(dst, h.request, h.callId));
    // The caller destroys the source's stopped copy once it sent the held requests on.
    source.destroyInstance(src);
    expect((await Promise.all(late)).map((r) => json(r).seq)).toEqual([2, 3, 4, 5, 6]);
    await expect(source.instanceHandle(src, req('GET', '/state'), `h${n++}`)).rejects.toMatchObject({ code: 'not_found' });
    expect(json(await target.instanceHandle(dst, req('GET', '/messages'), `h${n++}`)).next).toBe(6);
    expect(target.instances().find((i) => i.instanceId === dst)).not.toHaveProperty('migrating');
    target.destroyInstance(dst);
  });

  it('finishing - finishReceive answers once the last step is queued: requests to the received instance wait for it and run after it, in order', async () => {
    const src = await source.createInstance('room');
    await source.instanceHandle(src, req('POST', '/join', { name: 'ada' }), `f${n++}`);
    const dst = await roundZero(src);
    const last = await source.stopAndCopy(src);
    source.commitMigration(src);
    source.destroyInstance(src);
    const { pagesApplied, finished } = await target.finishReceive(dst, last.globals, last);
    expect(pagesApplied).toBeGreaterThan(0);
    let ran = false;
    void finished.then(() => (ran = true));
    // Committed here: listed as serving, and its requests are taken (not refused) while the step runs.
    expect(target.instances().find((i) => i.instanceId === dst)).not.toHaveProperty('migrating');
    const says = Array.from({ length: 3 }, (_, i) => target.instanceHandle(dst, req('POST', '/say', { name: 'ada', text: `f${i}` }), `finishing${i}`).then((r) => ({ seq: json(r).seq, afterFinish: ran })));
    await finished;
    expect(await Promise.all(says)).toEqual([{ seq: 1, afterFinish: true }, { seq: 2, afterFinish: true }, { seq: 3, afterFinish: true }]);
    expect(json(await target.instanceHandle(dst, req('GET', '/messages'), `f${n++}`)).messages.map((m: { text: string }) => m.text)).toEqual(['f0', 'f1', 'f2']);
    target.destroyInstance(dst);
  });

  it('finishing fails - a last step that fails destroys the received instance and fails the requests held behind it (none runs on a half-written memory)', async () => {
    const src = await source.createInstance('room');
    const dst = await roundZero(src);
    const last = await source.stopAndCopy(src);
    // A global the module does not have: the step throws in the thread after the pages are written.
    const { finished } = await target.finishReceive(dst, { ...last.globals, __flurry_global_missing: 1 }, last);
    const say = target.instanceHandle(dst, req('POST', '/say', { name: 'ada', text: 'lost' }), `ff${n++}`);
    await expect(finished).rejects.toThrow(/has no global __flurry_global_missing/);
    await expect(say).rejects.toMatchObject({ code: 'not_found' });
    expect(target.instances().some((i) => i.instanceId === dst)).toBe(false);
    await source.abortMigration(src);
    source.destroyInstance(src);
  });

  it('queued - requests queued but not started at the stop are held with the later ones (not run on the source), in order', async () => {
    const src = await source.createInstance('room');
    await source.instanceHandle(src, req('POST', '/join', { name: 'ada' }), `q${n++}`);
    const dst = await roundZero(src);
    // The first goes to the idle thread at once; the next four wait in its queue.
    const says = Array.from({ length: 5 }, (_, i) => source.instanceHandle(src, req('POST', '/say', { name: 'ada', text: `q${i}` }), `queued${i}`));
    const final = source.stopAndCopy(src);
    const later = source.instanceHandle(src, req('POST', '/say', { name: 'ada', text: 'later' }), 'later');
    const last = await final;
    await target.finishReceive(dst, last.globals, last);
    const held = source.commitMigration(src);
    expect(held.map((h) => h.callId)).toEqual(['queued1', 'queued2', 'queued3', 'queued4', 'later']);
    for (const h of held) h.forward(target.instanceHandle(dst, h.request, h.callId));
    // The caller destroys the source's stopped copy once it sent the held requests on.
    source.destroyInstance(src);
    expect((await Promise.all([...says, later])).map((r) => json(r).seq)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(json(await target.instanceHandle(dst, req('GET', '/messages'), `q${n++}`)).messages.map((m: { text: string }) => m.text)).toEqual(['q0', 'q1', 'q2', 'q3', 'q4', 'later']);
    target.destroyInstance(dst);
  });

  it('portable - without the native pager native tracking is refused, and compare moves a portable instance to a native pool', async () => {
    const limits = { callTimeoutMs: 5000, initTimeoutMs: 30_000, maxOutputBytes: 4 * MiB, maxLogLines: 64, maxLogBytes: 65536 };
    const portable = await GuestPool.start({ threads: 1, limits, log: createLogger('test', {}, 'silent'), pager: 'portable' });
    try {
      await portable.warm('room', new Uint8Array(readFileSync(new URL('room.wasm', BUILD))), bytes('{"ballastMiB": 2}'));
      const src = await portable.createInstance('room');
      await portable.instanceHandle(src, req('POST', '/join', { name: 'ada' }), `p${n++}`);
      await portable.instanceHandle(src, req('POST', '/say', { name: 'ada', text: 'portable' }), `p${n++}`);
      await expect(portable.beginMigration(src, { mode: 'async' })).rejects.toThrow(/native pager/);
      expect(json(await portable.instanceHandle(src, req('GET', '/state'), `p${n++}`)).seq).toBe(1);
      const digest = json(await portable.instanceHandle(src, req('GET', '/state'), `p${n++}`)).digest;
      const into = new InstanceTarget(target, 'room');
      const report = await precopy(await InstanceSource.begin(portable, src, { modes: ['compare'] }), into);
      const dst = into.instanceId!;
      expect(report.rounds.length).toBeGreaterThanOrEqual(2);
      // The target warmed room with a bigger ballast: what it holds now is the moved instance, not its own parent.
      expect(json(await target.instanceHandle(dst, req('GET', '/state'), `p${n++}`))).toMatchObject({ digest, seq: 1, ballastBytes: 2 * MiB });
      expect(json(await target.instanceHandle(dst, req('POST', '/say', { name: 'ada', text: 'native' }), `p${n++}`))).toEqual({ seq: 2 });
      target.destroyInstance(dst);
    } finally {
      await portable.close();
    }
  });

  it('errors - migration steps on the wrong instance or in the wrong order are refused', async () => {
    const src = await source.createInstance('room');
    await expect(source.migrationRound(src)).rejects.toMatchObject({ code: 'bad_request' });
    await expect(source.beginMigration('nope#1')).rejects.toMatchObject({ code: 'not_found' });
    await source.beginMigration(src, { mode: 'compare' });
    await expect(source.beginMigration(src)).rejects.toMatchObject({ code: 'conflict' });
    expect(() => source.commitMigration(src)).toThrow(/stopAndCopy first/);
    await expect(target.receiveInstance('nothing', { memoryBytes: 65536 })).rejects.toMatchObject({ code: 'not_found' });
    await source.abortMigration(src);
    source.destroyInstance(src);
  });
});
