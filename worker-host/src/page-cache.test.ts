/**
 * A page cache's delivery when the memory server misbehaves: it acknowledges
 * requests and never sends, it loses the first send of every chunk (a host
 * paused or cut off while its chunks went out), or it is gone. Each ends by
 * the failure itself (a stall count, no responders), never by waiting out a
 * call's time limit. A real nats-server and the portable form of the cache
 * (an eager fill: the same delivery, no userfaultfd needed); the memory
 * server is scripted on the test's connection.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import {
  decode, DEFAULT_CHUNK_PAGES, describeMemoryByPieces, encode, PAGE_SIZE, Subjects,
  type PageFetchReply, type PageFetchRequest, type SnapshotDescriptor,
} from '@flurry/core';
import { findNatsServer, startNatsServer, type RunningNatsServer } from '../../infra/src/nats-server.js';
import { PageCache } from './page-cache.js';

const CHUNK_BYTES = PAGE_SIZE * DEFAULT_CHUNK_PAGES;
/** 16 chunks of non-zero bytes. */
const MEMORY = Uint8Array.from({ length: 16 * CHUNK_BYTES }, (_, i) => (i * 7 + 1) & 0xff);

const natsServer = findNatsServer();
if (!natsServer) console.warn('[page cache] skipping: nats-server not found');

describe.skipIf(!natsServer)('page cache delivery', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'flurry-page-cache-'));
  let server: RunningNatsServer;
  let nc: NatsConnection;
  const subs: Subscription[] = [];
  const caches: PageCache[] = [];

  beforeAll(async () => {
    server = await startNatsServer({ dataDir });
    nc = await connect({ servers: server.url });
  });

  afterAll(async () => {
    for (const c of caches) c.close();
    for (const s of subs) s.unsubscribe();
    await nc?.close();
    await server?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  function descriptorOf(snapshotId: string, memory = MEMORY): SnapshotDescriptor {
    const { zeroPages, chunkHashes } = describeMemoryByPieces((o, l) => memory.subarray(o, o + l), memory.length, PAGE_SIZE, DEFAULT_CHUNK_PAGES);
    return {
      snapshotId, tenant: 'default', function: 'f', moduleDigest: 'd', memoryBytes: memory.length, maximumPages: 1, pageSize: PAGE_SIZE,
      chunkPages: DEFAULT_CHUNK_PAGES, globals: [], zeroPages, chunkHashes, serverHostId: 'parent-host', createdAt: Date.now(),
    };
  }

  /** A scripted memory server: `send(request)` says which of the asked chunks go out. */
  async function memoryServer(d: SnapshotDescriptor, send: (req: PageFetchRequest) => number[], memory = MEMORY): Promise<PageFetchRequest[]> {
    const seen: PageFetchRequest[] = [];
    subs.push(nc.subscribe(Subjects.pageRequests(d.tenant, d.snapshotId), {
      callback: (_e, msg) => {
        const req = decode<PageFetchRequest>(msg.data);
        seen.push(req);
        msg.respond(encode({ ok: true, sent: req.chunks.length } satisfies PageFetchReply));
        for (const c of send(req)) publishChunk(d, c, memory);
      },
    }));
    await nc.flush();
    return seen;
  }

  function publishChunk(d: SnapshotDescriptor, c: number, memory: Uint8Array): void {
    nc.publish(Subjects.pages(d.tenant, d.snapshotId), encode({ chunk: c, bytes: memory.subarray(c * CHUNK_BYTES, (c + 1) * CHUNK_BYTES) }));
  }

  const cacheOf = (d: SnapshotDescriptor) => {
    const cache = new PageCache({ nc, hostId: 'clone-host', descriptor: d, batchChunks: 4 });
    caches.push(cache);
    return cache;
  };

  it('stalled stream - a server that acknowledges and never sends fails the cache: chunks never arrived', async () => {
    const d = descriptorOf('snap-stalled');
    const seen = await memoryServer(d, () => []);
    const cache = cacheOf(d);
    await expect(cache.fillAll()).rejects.toThrow(/chunks of snapshot snap-stalled never arrived from host parent-host/);
    // Asked again (with force, listening afresh) before giving up.
    expect(seen.some((r) => r.chunks.length > 0 && r.force && r.relisten)).toBe(true);
    expect(cache.failedWith?.code).toBe('unavailable');
  });

  it('lost chunks - a server whose first send of each chunk never arrives: every chunk is asked for again at once and the fill completes', async () => {
    const d = descriptorOf('snap-lossy');
    const sentOnce = new Set<number>();
    const seen = await memoryServer(d, (req) => req.chunks.filter((c) => {
      if (sentOnce.has(c)) return true;
      sentOnce.add(c);
      return false; // "sent" while the host could not hear it
    }));
    const cache = cacheOf(d);
    await cache.fillAll();
    expect(cache.complete).toBe(true);
    // The whole lost set was asked for again in one stall (4 requests of 4 chunks), not chunk run by chunk run.
    const reasks = seen.filter((r) => r.force);
    expect(new Set(reasks.flatMap((r) => r.chunks)).size).toBe(16);
    expect(reasks.every((r) => r.relisten)).toBe(true);
  });

  it('fill - at most 256 chunks are asked for and not here at a time, the next asked as they arrive, each once: the fill completes', async () => {
    const memory = Uint8Array.from({ length: 600 * CHUNK_BYTES }, (_, i) => (i * 13 + 5) & 0xff);
    const d = descriptorOf('snap-window', memory);
    let holding = true;
    const held: number[] = [];
    const seen = await memoryServer(d, (req) => {
      if (holding) return (held.push(...req.chunks), []);
      return req.chunks;
    }, memory);
    const cache = cacheOf(d);
    const done = cache.fillAll();
    // Nothing arrives: the fill waits with its window asked for (well before a stall, 1 s, would ask again).
    await new Promise((r) => setTimeout(r, 200));
    expect(new Set(held).size).toBe(256);
    holding = false;
    for (const c of held) publishChunk(d, c, memory);
    await done;
    expect(cache.complete).toBe(true);
    const asked = seen.flatMap((r) => r.chunks);
    expect(asked.length).toBe(600);
    expect(new Set(asked).size).toBe(600);
  });

  it('memory server gone - nobody answers its subject: the cache fails at once, saying so', async () => {
    const cache = cacheOf(descriptorOf('snap-gone'));
    await expect(cache.fillAll()).rejects.toThrow(/the memory server of snapshot snap-gone on host parent-host did not answer \(.*nobody listens/);
  });
});
