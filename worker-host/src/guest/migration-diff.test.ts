/**
 * Round 0 from the parent (in-process, two pools): a copy-on-write clone sends
 * only the pages it wrote since its fork when the target holds a parent with
 * the same digest, and the target's instance ends up with the source's memory
 * byte for byte — pages never written, written, and written back to the
 * parent's bytes alike; a target whose parent differs gets every page.
 */
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@flurry/core';
import { loadNativePager, nativePagerStatus } from '../native/pager.js';
import { InstanceSource } from '../migration/instance-source.js';
import { InstanceTarget } from '../migration/instance-target.js';
import { precopy } from '../migration/precopy.js';
import { GuestPool, type CallResult, type HttpRequestData } from './guest-pool.js';

const BUILD = new URL('../../../functions/build/', import.meta.url);
const hasRoom = existsSync(new URL('room.wasm', BUILD));
const status = nativePagerStatus();
const caps = status.available ? loadNativePager().capabilities() : undefined;
const mode = caps?.writeProtect && caps.wpUnpopulated ? (caps.wpAsync && caps.pagemapScan ? 'async' : 'sync') : undefined;
const skip = !hasRoom || !status.copyOnWrite || !caps?.pagemapScan || mode === undefined;
if (skip) console.warn(`migration-diff.test.ts skipped: ${!hasRoom ? 'functions/build lacks room' : `the native pager cannot make and track copy-on-write clones here (${status.reason ?? caps?.reason ?? 'no PAGEMAP_SCAN'})`}`);

const MiB = 1024 * 1024;
const BALLAST_MIB = 8;
const BALLAST_PAGES = (BALLAST_MIB * MiB) / 4096;
const bytes = (s: string) => new TextEncoder().encode(s);
const json = (r: CallResult) => JSON.parse(new TextDecoder().decode(r.body)) as Record<string, any>;
const req = (method: string, path: string, body?: unknown): HttpRequestData => ({ method, path, query: '', headers: [], body: body === undefined ? new Uint8Array(0) : bytes(JSON.stringify(body)) });

describe.skipIf(skip)(`round 0 from the parent (room, ${BALLAST_MIB} MiB ballast, ${mode} tracking)`, () => {
  let source: GuestPool;
  /** Holds the same parent as the source (same module and init input: the same bytes). */
  let same: GuestPool;
  /** Its parent of the same module was booted with another init input: other bytes. */
  let other: GuestPool;
  let n = 0;

  beforeAll(async () => {
    const limits = { callTimeoutMs: 10_000, initTimeoutMs: 30_000, maxOutputBytes: 4 * MiB, maxLogLines: 64, maxLogBytes: 65536 };
    const log = createLogger('test', {}, 'silent');
    [source, same, other] = await Promise.all([0, 1, 2].map(() => GuestPool.start({ threads: 1, limits, log, pager: 'native' })));
    const room = new Uint8Array(readFileSync(new URL('room.wasm', BUILD)));
    const init = bytes(JSON.stringify({ ballastMiB: BALLAST_MIB }));
    await Promise.all([source.warm('room', room, init), same.warm('room', room, init), other.warm('room', room, bytes(JSON.stringify({ ballastMiB: BALLAST_MIB - 1 })))]);
  });
  afterAll(async () => {
    await Promise.all([source, same, other].map((p) => p?.close()));
  });

  /** Makes an instance, runs `requests` on it, migrates it to `to` and answers what moved, checking the memory and state arrived whole. */
  async function migrate(to: GuestPool, requests: HttpRequestData[], maxRounds = 10) {
    const src = await source.createInstance('room');
    for (const r of requests) expect((await source.instanceHandle(src, r, `r${n++}`)).status).toBe(200);
    const before = json(await source.instanceHandle(src, req('GET', '/state'), `r${n++}`));
    const into = new InstanceTarget(to, 'room', { verify: true });
    const from = await InstanceSource.begin(source, src, { modes: [mode!], verify: true });
    const report = await precopy(from, into, { downtimeBudgetMs: 5, maxRounds });
    expect(from.memoryAtStop?.hash).toBeDefined();
    expect(into.memoryHash).toBe(from.memoryAtStop!.hash);
    const after = json(await to.instanceHandle(into.instanceId!, req('GET', '/state'), `r${n++}`));
    expect(after).toEqual(before);
    to.destroyInstance(into.instanceId!);
    return report;
  }

  it('pages never written since the fork stay the parent\'s: only the written ones are sent', async () => {
    const report = await migrate(same, [req('POST', '/join', { name: 'ada' }), req('POST', '/churn', { bytes: MiB })]);
    expect(report.fromParent).toBe(true);
    // 1 MiB of ballast and a few pages of heap, not the 8 MiB of ballast the parent holds already.
    expect(report.rounds[0]!.pages).toBeGreaterThanOrEqual(MiB / 4096);
    expect(report.rounds[0]!.pages).toBeLessThan(BALLAST_PAGES / 2);
    expect(report.totalBytes).toBeLessThan(report.memoryBytes / 4);
  });

  it('pages written back to the parent\'s bytes and pages written since arrive as the source holds them', async () => {
    // /churn XORs each byte with a mark that is the same for each full pass here: two passes give the parent's bytes back.
    const whole = BALLAST_MIB * MiB;
    const report = await migrate(same, [req('POST', '/churn', { bytes: whole }), req('POST', '/churn', { bytes: whole }), req('POST', '/churn', { bytes: 3 * 4096 + 17 })]);
    expect(report.fromParent).toBe(true);
    // Written since the fork, all of them (the same bytes as the parent's or not): the clone's own pages.
    expect(report.rounds[0]!.pages).toBeGreaterThanOrEqual(BALLAST_PAGES);
  });

  it('stop-and-copy only sends what differs from the parent too', async () => {
    const report = await migrate(same, [req('POST', '/churn', { bytes: 2 * MiB })], 0);
    expect(report.fromParent).toBe(true);
    expect(report.rounds).toEqual([]);
    expect(report.finalPages).toBeGreaterThanOrEqual((2 * MiB) / 4096);
    expect(report.finalPages).toBeLessThan(BALLAST_PAGES / 2);
  });

  it('a target whose parent holds other bytes gets every page, and the same memory', async () => {
    const report = await migrate(other, [req('POST', '/churn', { bytes: MiB })]);
    expect(report.fromParent).toBe(false);
    expect(report.rounds[0]!.pages).toBeGreaterThanOrEqual(BALLAST_PAGES);
  });
});
