/**
 * The typed NATS calls (core/src/nats-call.ts) against a real nats-server:
 * a good request gets its handler's reply, a malformed one or a failing
 * handler gets the kind's refusal, an oversized reply becomes `output_limit`,
 * and a call that reaches nobody or waits too long fails with its reason.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { call, callEncoded, CallFailed, encode, FlurryError, isBrokerFailure, isCallTimeout, isNoResponders, listen, publishTo, serve, type ForkRequest, type ServiceLoadReport } from '@flurry/core';
import { startNatsServer, type RunningNatsServer } from '../infra/src/nats-server.js';

let nats: RunningNatsServer;
let nc: NatsConnection;
let dataDir: string;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'flurry-nats-call-'));
  nats = await startNatsServer({ dataDir, maxPayloadBytes: 256 * 1024 });
  nc = await connect({ servers: nats.url });
});

afterAll(async () => {
  await nc?.close();
  await nats?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

const forkRequest: ForkRequest = { requestId: 'r1', descriptor: new Uint8Array([1, 2]), clones: [{ index: 0, input: new Uint8Array() }], count: 1, resultSubject: 'flurry.fork.x', prefetch: false };

describe('call and serve', () => {
  it('a request is checked, handled and its reply checked', async () => {
    const seen: string[] = [];
    const sub = serve(nc, 'fork', 'test.fork.ok', (req) => {
      seen.push(req.requestId);
      return { ok: true, hostId: 'h1', started: req.clones.length, runningAt: 7, pager: 'portable' };
    });
    const reply = await call(nc, 'fork', 'test.fork.ok', forkRequest);
    expect(reply).toEqual({ ok: true, hostId: 'h1', started: 1, runningAt: 7, pager: 'portable' });
    expect(seen).toEqual(['r1']);
    sub.unsubscribe();
  });

  it('a malformed request gets the refusal bad_request and never reaches the handler; a throwing handler gets its error back', async () => {
    let handled = 0;
    const sub = serve(nc, 'fork', 'test.fork.bad', () => {
      handled++;
      throw new FlurryError('no_capacity', 'full');
    }, { hostId: 'h2' });
    const refused = await callEncoded(nc, 'fork', 'test.fork.bad', encode({ requestId: 5 }));
    expect(refused).toMatchObject({ ok: false, hostId: 'h2', error: { code: 'bad_request', message: expect.stringMatching(/^malformed ForkRequest: requestId: /) } });
    expect(handled).toBe(0);
    const failed = await call(nc, 'fork', 'test.fork.bad', forkRequest);
    expect(failed).toEqual({ ok: false, hostId: 'h2', error: { code: 'no_capacity', message: 'full' } });
    expect(handled).toBe(1);
    sub.unsubscribe();
  });

  it('each reply kind refuses its own way: a cancel reply says nothing was stopped', async () => {
    const sub = serve(nc, 'cancel', 'test.cancel', () => Promise.reject(new Error('boom')), { hostId: 'h3' });
    expect(await call(nc, 'cancel', 'test.cancel', { tenant: 't', snapshotId: 's', jobId: 'j' })).toEqual({ hostId: 'h3', stopped: false, error: { code: 'internal', message: 'boom' } });
    sub.unsubscribe();
  });

  it('a reply larger than the broker takes becomes output_limit', async () => {
    const sub = serve(nc, 'invoke', 'test.invoke.big', () => ({ ok: true, status: 200, headers: [], body: new Uint8Array(300 * 1024), hostId: 'h4', durationMs: 1 }), { hostId: 'h4' });
    const reply = await call(nc, 'invoke', 'test.invoke.big', { requestId: 'x', tenant: 't', name: 'f', digest: 'd', method: 'GET', path: '/', query: '', headers: [], body: new Uint8Array() });
    expect(reply).toMatchObject({ ok: false, hostId: 'h4', error: { code: 'output_limit' } });
    sub.unsubscribe();
  });

  it('a malformed reply is a bad_request error, not a value', async () => {
    const sub = nc.subscribe('test.fork.liar', { callback: (_e, msg) => void msg.respond(encode({ ok: 'yes' })) });
    await expect(call(nc, 'fork', 'test.fork.liar', forkRequest)).rejects.toMatchObject({ code: 'bad_request' });
    sub.unsubscribe();
  });

  it('nobody listening and no answer in time are failures with their reason, and count as the broker failing', async () => {
    const nobody = await call(nc, 'fork', 'test.fork.nobody', forkRequest).catch((e: unknown) => e);
    expect(nobody).toBeInstanceOf(CallFailed);
    expect(isNoResponders(nobody)).toBe(true);
    expect((nobody as FlurryError).code).toBe('unavailable');
    const silent = nc.subscribe('test.fork.silent', { callback: () => undefined });
    const late = await call(nc, 'fork', 'test.fork.silent', forkRequest, { timeoutMs: 100 }).catch((e: unknown) => e);
    expect(isCallTimeout(late)).toBe(true);
    expect((late as FlurryError).code).toBe('timeout');
    expect(isBrokerFailure(late)).toBe(true);
    silent.unsubscribe();
  });
});

describe('listen and publishTo', () => {
  it('checked messages reach the handler, malformed ones are dropped', async () => {
    const got: ServiceLoadReport[] = [];
    const sub = listen(nc, 'load', 'test.load', (report) => void got.push(report));
    nc.publish('test.load', encode({ nonsense: true }));
    const report: ServiceLoadReport = { gateway: 'g1', at: 1, services: [] };
    publishTo(nc, 'load', 'test.load', report);
    await nc.flush();
    await expect.poll(() => got.length).toBe(1);
    expect(got[0]).toEqual(report);
    sub.unsubscribe();
  });
});
