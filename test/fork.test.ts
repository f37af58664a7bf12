// Fork across hosts: a warm parent's snapshot cloned onto three host
// processes with lazy memory, multicast pages and hash checks, once with the
// native userfaultfd pager and once with the portable pager (one suite, both).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import {
  adoptAhead, decode, decodeDescriptor, encode, encodeDescriptor, forkAcross, releaseSnapshot, requestSnapshot, roundRobin, Subjects,
  type PageFetchReply, type PageFetchRequest, type SnapshotDescriptor,
} from '@flurry/core';
import { LocalFleet } from '../infra/src/local-fleet.js';
import { nativePagerStatus } from '../worker-host/src/native/pager.js';
import { deploy, guestProgram } from './helpers/functions.js';
import { until } from './helpers/gateway-api.js';
import type { PatternOutput } from './helpers/pattern.js';


const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const native = nativePagerStatus();
const pagers = [
  { pager: 'userfaultfd', env: { FLURRY_PAGER: 'userfaultfd' }, skip: native.available ? undefined : `native pager unavailable: ${native.reason}` },
  { pager: 'portable', env: { FLURRY_PAGER: 'portable' }, skip: undefined },
] as const;

for (const { pager, env, skip } of pagers) {
  describe.skipIf(skip !== undefined)(`fork (${pager} pager)`, () => {
    let fleet: LocalFleet;
    let nc: NatsConnection;
    let digest: string;
    const hosts = ['host-1', 'host-2', 'host-3'];

    beforeAll(async () => {
      if (skip) console.log(`skipping fork tests with the ${pager} pager: ${skip}`);
      fleet = await LocalFleet.start({ hosts: 3, hostEnv: { ...env, FLURRY_GUEST_THREADS: '2', LOG_LEVEL: 'warn' }, gatewayEnv: { LOG_LEVEL: 'warn' } });
      nc = await connect(fleet.adminConnectOptions());
      const res = await deploy(fleet.url, 'pattern', guestProgram('pattern'));
      digest = ((await res.json()) as { function: { digest: string } }).function.digest;
    });

    afterAll(async () => {
      await nc?.close();
      await fleet?.stop();
    });

    const snapshot = (mib: number) =>
      requestSnapshot(nc, 'host-1', { requestId: `t-${pager}-${mib}`, tenant: 'default', name: 'pattern', digest, initInput: enc({ mib, verify: 'all' }) });

    it('fork - 16 clones over 3 hosts read the 64 MiB pattern, write their own, and leave the snapshot unchanged', async () => {
      const snap = await snapshot(64);
      const d = decodeDescriptor(snap.descriptor);
      expect(d.memoryBytes).toBeGreaterThanOrEqual(64 * 1024 * 1024);
      const out = await forkAcross(nc, { requestId: 'fork-16', descriptor: snap.descriptor, placement: roundRobin(hosts, 16), count: 16 });
      expect(out.replies.map((r) => r.ok && r.pager)).toEqual(Array(3).fill(pager));
      const outputs = out.results.map((r) => {
        expect(r.ok, r.error?.message).toBe(true);
        return JSON.parse(new TextDecoder().decode(r.output)) as PatternOutput;
      });
      expect(outputs.map((o) => o.index)).toEqual([...Array(16).keys()]);
      for (const o of outputs) {
        expect(o).toMatchObject({ ok: true, mismatches: 0, writeOk: true, inits: 1, restored: true, mib: 64 });
      }
      // Every clone verified the same parent memory.
      expect(new Set(outputs.map((o) => o.checksum)).size).toBe(1);
      // Every clone saw its own entropy.
      expect(new Set(outputs.map((o) => o.entropyHex)).size).toBe(16);
      // Clones ran on every host, and remote hosts fetched pages.
      expect(new Set(out.results.map((r) => r.hostId))).toEqual(new Set(hosts));
      // Each host said where its part went (bench/src/fork-phases.ts): received after the send, ready, then running;
      // each clone's instance made before it ran; a lazy clone's first fault served by the pager (the parent's host maps its file).
      for (const r of out.replies) {
        const p = r.ok ? r.phases : undefined;
        expect(p, `phases of ${r.hostId}`).toBeDefined();
        expect(p!.receivedAt).toBeGreaterThan(out.sentAt - 1);
        expect(p!.preparedMs).toBeLessThanOrEqual(p!.runningMs);
      }
      for (const r of out.results) {
        // The guest thread's clock and the host's main thread's agree to well under a millisecond.
        expect(r.createdMs).toBeLessThanOrEqual(r.startMs + 1);
        // A page its host already held is mapped by the kernel, with no fault to the pager: a clone that found
        // every page it touched there has no first fault; one that faulted did so after its instance was made.
        if (pager === 'userfaultfd' && r.hostId !== 'host-1') {
          if (r.firstFaultMs !== undefined) expect(r.firstFaultMs, `clone ${r.index}`).toBeGreaterThanOrEqual(r.createdMs! - 1);
        } else expect(r.firstFaultMs).toBeUndefined();
      }
      if (pager === 'userfaultfd') {
        // The first pages a remote host's clones touched were not there yet: some clone there waited on the pager.
        for (const h of ['host-2', 'host-3']) expect(out.results.some((r) => r.hostId === h && r.firstFaultMs !== undefined), h).toBe(true);
      }
      // After all of them wrote their slices, a new clone still reads the parent's pattern.
      const again = await forkAcross(nc, { requestId: 'fork-again', descriptor: snap.descriptor, placement: new Map([['host-2', [0]], ['host-1', [1]]]), count: 2, prefetch: true });
      for (const r of again.results) expect(JSON.parse(new TextDecoder().decode(r.output))).toMatchObject({ ok: true, checksum: outputs[0].checksum });
      const stats = await releaseSnapshot(nc, hosts, 'default', snap.snapshotId);
      const server = stats.find((s) => s.server)!.server!;
      const received = stats.filter((s) => s.cache).map((s) => s.cache!);
      expect(received.length).toBe(2);
      // Multicast: each chunk crossed the network about once for both remote hosts.
      const nonZeroBytes = d.memoryBytes; // upper bound: pattern fills the region
      expect(server.bytesSent).toBeLessThanOrEqual(nonZeroBytes * 1.2);
      // ...and that one transmission reached both remote hosts.
      const bytesReceived = received.reduce((n, c) => n + c.bytesReceived, 0);
      console.log(`${pager}: memory ${d.memoryBytes} B, server sent ${server.bytesSent} B, remote hosts received ${bytesReceived} B`);
      expect(bytesReceived).toBeGreaterThan(server.bytesSent * 1.5);
    });

    it('adopt ahead - hosts adopt a snapshot before its fork (a fork request with no clones), and its clones then run from that adoption', async () => {
      const snap = await snapshot(8);
      try {
        const ready = await adoptAhead(nc, hosts, snap.descriptor, { requestId: `ahead-${pager}` });
        expect(ready.map((r) => [r.hostId, r.started])).toEqual(hosts.map((h) => [h, 0]));
        // Adopted before any clone was asked for: the hosts without the parent cache its pages already.
        const caching = async () => {
          const { hosts: records } = (await (await fetch(`${fleet.url}/v1/hosts`)).json()) as { hosts: { id: string; pageCaches?: string[] }[] };
          const ids = records.filter((h) => h.pageCaches?.includes(snap.snapshotId)).map((h) => h.id).sort();
          return ids.length === 2 ? ids : undefined;
        };
        expect(await until('hosts caching the snapshot adopted ahead', caching, 20_000)).toEqual(['host-2', 'host-3']);
        const out = await forkAcross(nc, { requestId: `ahead-fork-${pager}`, descriptor: snap.descriptor, placement: roundRobin(hosts, 6), count: 6 });
        const outputs = out.results.map((r) => {
          expect(r.ok, r.error?.message).toBe(true);
          return JSON.parse(new TextDecoder().decode(r.output)) as PatternOutput;
        });
        for (const o of outputs) expect(o).toMatchObject({ ok: true, mismatches: 0, inits: 1, restored: true });
        expect(new Set(outputs.map((o) => o.checksum)).size).toBe(1);
      } finally {
        const stats = await releaseSnapshot(nc, hosts, 'default', snap.snapshotId);
        // The hosts without the parent held its pages.
        expect(stats.filter((s) => s.cache).map((s) => s.hostId).sort()).toEqual(['host-2', 'host-3']);
      }
    });

    it('descriptor with a wrong checksum - the host refuses the fork with a clear error and runs nothing', async () => {
      const snap = await snapshot(1);
      const tampered = new Uint8Array(snap.descriptor);
      tampered[20] ^= 0x01; // inside the body: its SHA-256 no longer matches
      try {
        const out = await forkAcross(nc, { requestId: 'fork-tampered', descriptor: tampered, placement: new Map([['host-2', [0]]]), count: 1, timeoutMs: 20_000 }).catch((err: Error) => err);
        expect(out).toBeInstanceOf(Error);
        expect((out as Error).message).toMatch(/snapshot descriptor checksum mismatch/);
        // Nothing was adopted from it.
        const { hosts: records } = (await (await fetch(`${fleet.url}/v1/hosts`)).json()) as { hosts: { id: string; pageCaches?: string[] }[] };
        expect(records.find((h) => h.id === 'host-2')?.pageCaches ?? []).not.toContain(snap.snapshotId);
      } finally {
        await releaseSnapshot(nc, hosts, 'default', snap.snapshotId);
      }
    });

    it('corrupted page - a chunk that fails its hash stops the clone with a clear error', async () => {
      const snap = await snapshot(4);
      const real = decodeDescriptor(snap.descriptor);
      // A malicious memory server: serves the real pages for a copy of the snapshot, with one bit flipped.
      const evil: SnapshotDescriptor = { ...real, snapshotId: `${real.snapshotId}x`, serverHostId: 'evil' };
      // The relay's own page subject of the real snapshot: a memory server sends chunks by unicast nowhere else.
      const fromReal = `${Subjects.unicastPages('default', real.snapshotId, 'evil')}.relay`;
      const relay = nc.subscribe(fromReal, {
        callback: (_e, msg) => {
          const m = decode<{ chunk: number; bytes: Uint8Array }>(msg.data);
          const bytes = new Uint8Array(m.bytes);
          bytes[100] ^= 0x01;
          nc.publish(Subjects.pages('default', evil.snapshotId), encode({ chunk: m.chunk, bytes }));
        },
      });
      const sub = nc.subscribe(Subjects.pageRequests('default', evil.snapshotId), {
        callback: (_e, msg) => {
          const req = decode<PageFetchRequest>(msg.data);
          msg.respond(encode({ ok: true, sent: req.chunks.length } satisfies PageFetchReply));
          // Relayed from the real memory server; a relay that fails leaves the chunks missing, which the cache reports.
          if (req.chunks.length > 0) void nc.request(Subjects.pageRequests('default', real.snapshotId), encode({ hostId: 'evil', chunks: req.chunks, unicastSubject: fromReal } satisfies PageFetchRequest)).catch(() => undefined);
        },
      });
      try {
        const out = await forkAcross(nc, { requestId: 'fork-evil', descriptor: encodeDescriptor(evil), placement: new Map([['host-3', [0]]]), count: 1, timeoutMs: 20_000 }).catch((err: Error) => err);
        if (out instanceof Error) {
          // The portable pager fills memory before starting, so the fork itself fails.
          expect(out.message).toMatch(/failed its hash check/);
        } else {
          expect(out.results[0].ok).toBe(false);
          expect(out.results[0].error?.message).toMatch(/failed its hash check/);
        }
        // The failed cache is dropped at once: it must not outlive the fork (a kept parent's pages stay cached for later jobs).
        for (let i = 0; ; i++) {
          const { hosts: records } = (await (await fetch(`${fleet.url}/v1/hosts`)).json()) as { hosts: { id: string; pageCaches?: string[] }[] };
          if (!records.find((h) => h.id === 'host-3')?.pageCaches?.includes(evil.snapshotId)) break;
          if (i > 300) throw new Error(`host-3 still caches the pages of ${evil.snapshotId}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      } finally {
        sub.unsubscribe();
        relay.unsubscribe();
        await releaseSnapshot(nc, hosts, 'default', snap.snapshotId);
        await releaseSnapshot(nc, hosts, 'default', evil.snapshotId);
      }
    });
  });
}
