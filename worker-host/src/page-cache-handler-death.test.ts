/**
 * A page cache when the pager's fault handler thread dies: the host's lazy
 * clones stop with the death's reason instead of sleeping in their faults
 * forever. Real pieces throughout: a nats-server, a page cache on the native
 * pager, guest pools, and the forker's wiring (a failed cache aborts its
 * clones). The memory server acknowledges requests and never sends a page, so
 * the clone's fault can only end through the failure.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import {
  createLogger, decode, DEFAULT_CHUNK_PAGES, describeMemoryByPieces, encode, FlurryError, PAGE_SIZE, Subjects,
  type PageFetchReply, type PageFetchRequest, type SnapshotDescriptor,
} from '@flurry/core';
import { findNatsServer, startNatsServer, type RunningNatsServer } from '../../infra/src/nats-server.js';
import { GuestPool } from './guest/guest-pool.js';
import { loadNativePager, nativePagerStatus } from './native/pager.js';
import { PageCache } from './page-cache.js';
import { wat } from '../../test/helpers/wat.js';

const silent = createLogger('test', {}, 'silent');
// A call timeout far beyond the test's: a clone can only end here by the failure.
const limits = { callTimeoutMs: 600_000, initTimeoutMs: 10_000, maxOutputBytes: 1 << 20, maxLogLines: 64, maxLogBytes: 65536 };

/** A parent whose 4 wasm pages hold non-zero words; run outputs the word at 128 KiB (one page every clone must fetch). */
const READER = wat(`(module
  (import "flurry" "output_write" (func $out (param i32 i32)))
  (memory (export "memory") 4 8)
  (func (export "init") (local $a i32)
    (loop $fill
      (i32.store (local.get $a) (i32.add (local.get $a) (i32.const 1)))
      (local.set $a (i32.add (local.get $a) (i32.const 4)))
      (br_if $fill (i32.lt_u (local.get $a) (i32.const 262144)))))
  (func (export "run") (param $i i32) (param $n i32) (result i32)
    (i32.store (i32.const 0) (i32.load (i32.const 131072)))
    (call $out (i32.const 0) (i32.const 4))
    (i32.const 0)))`);

const status = nativePagerStatus();
const natsServer = findNatsServer();
const skip = !status.available ? `the native pager is unavailable: ${status.reason}` : !natsServer ? 'nats-server not found' : undefined;
if (skip) console.warn(`[page cache, handler death] skipping: ${skip}`);

describe.skipIf(!!skip)('page cache: the pager fault handler thread dies', () => {
  const pager = status.available ? loadNativePager() : undefined!;
  const dataDir = mkdtempSync(join(tmpdir(), 'flurry-handler-death-'));
  let server: RunningNatsServer;
  let nc: NatsConnection;
  let parents: GuestPool;
  let clones: GuestPool;
  let descriptor: SnapshotDescriptor;
  const caches: PageCache[] = [];
  /** Resolves when the memory server is first asked for chunks: a clone's miss reached the cache. */
  let asked!: Promise<void>;

  beforeAll(async () => {
    server = await startNatsServer({ dataDir });
    nc = await connect({ servers: server.url });
    [parents, clones] = await Promise.all([GuestPool.start({ threads: 1, limits, log: silent, pager: 'native' }), GuestPool.start({ threads: 2, limits, log: silent, pager: 'native' })]);
    await parents.warm('reader', READER);
    const image = parents.snapshotImage('reader');
    const { zeroPages, chunkHashes } = describeMemoryByPieces((o, l) => image.read(o, l), image.byteLength, PAGE_SIZE, DEFAULT_CHUNK_PAGES);
    descriptor = {
      snapshotId: 'snap-handler-death', tenant: 'default', function: 'reader', moduleDigest: image.moduleDigest,
      memoryBytes: image.byteLength, maximumPages: image.maximumPages, pageSize: PAGE_SIZE, chunkPages: DEFAULT_CHUNK_PAGES,
      globals: image.globals, zeroPages, chunkHashes, serverHostId: 'parent-host', createdAt: Date.now(),
    };
    asked = new Promise<void>((resolve) => {
      nc.subscribe(Subjects.pageRequests(descriptor.tenant, descriptor.snapshotId), {
        callback: (_err, msg) => {
          if (decode<PageFetchRequest>(msg.data).chunks.length > 0) resolve();
          msg.respond(encode({ ok: true, sent: 0 } satisfies PageFetchReply));
        },
      });
    });
    await nc.flush();
  });

  afterAll(async () => {
    await Promise.all([parents?.close(), clones?.close()]);
    for (const cache of caches) cache.close();
    await nc?.close();
    await server?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** A cache on this host and clones adopted from it, wired as the forker wires them. */
  async function adopt(key: string): Promise<PageCache> {
    const cache = new PageCache({ nc, hostId: 'clone-host', descriptor, pager });
    caches.push(cache);
    cache.onFailure((err) => clones.abort(key, err));
    await clones.adoptSnapshot(key, { moduleBytes: READER, byteLength: descriptor.memoryBytes, maximumPages: descriptor.maximumPages, globals: descriptor.globals, source: cache.source() });
    return cache;
  }

  it('handler death - a lazy clone asleep in a fault fails with the reason instead of waiting for its page', async () => {
    const cache = await adopt('reader');
    const run = clones.run('reader', 0, 1, new Uint8Array(0), 'c0');
    await asked;
    const source = cache.source();
    expect(source.kind).toBe('lazy');
    if (source.kind === 'lazy') expect(pager.storeStats(source.storeId).waitingFaults).toBe(1);
    pager.debugFailHandler('EBADF');
    const error = await run.then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(FlurryError);
    expect(error).toMatchObject({ code: 'internal' });
    expect((error as Error).message).toMatch(/^the pager's fault handler thread died \(epoll_wait failed: EBADF .*, injected by debugFailHandler\); clones paging lazily on this host are stopped$/);
    expect(cache.failedWith).toBe(error);
    // The aborted clone's thread was released and replaced.
    expect(clones.size).toBe(2);
  });

  it('handler death - a cache made after the death fails at once with the same reason', async () => {
    const cache = new PageCache({ nc, hostId: 'clone-host', descriptor, pager });
    caches.push(cache);
    const failed = await new Promise<FlurryError>((resolve) => cache.onFailure(resolve));
    expect(failed.message).toContain(`the pager's fault handler thread died (${pager.debugState().handlerDeath})`);
  });
});
