/**
 * Live migration of a service instance between two hosts over NATS
 * (docs/services.md, "Migration"): the pre-copy driver's target as NATS
 * requests to the target host, and the target host's side of those steps.
 * Pages travel in chunks of at most CHUNK_BYTES (under the default 1 MiB
 * max_payload); the end of a migration (last pages, globals, commit) is one
 * step when the last pages fit one chunk.
 */
import { RequestError, type NatsConnection } from '@nats-io/transport-node';
import {
  decode, encode, FlurryError, MigrationSubjects, toWireError,
  type InitDataRef, type Logger, type ReceiveStep, type ReceiveStepReply, type WireGlobal,
} from '@flurry/core';
import type { GlobalValue } from '../guest/instance.js';
import type { GuestPool } from '../guest/guest-pool.js';
import type { ParentSpec } from '../service-parents.js';
import type { CommitTiming, PrecopyTarget } from './precopy.js';

/** Page bytes per apply message at most (messages stay at about 1 MiB). */
export const CHUNK_BYTES = 1024 * 1024 - 64 * 1024;
/** Apply messages in flight at once. */
const WINDOW = 4;

export function globalsToWire(g: Record<string, GlobalValue>): Record<string, WireGlobal> {
  return Object.fromEntries(Object.entries(g).map(([k, v]) => [k, typeof v === 'bigint' ? { b: v.toString() } : { n: v }]));
}

export function globalsFromWire(g: Record<string, WireGlobal>): Record<string, GlobalValue> {
  return Object.fromEntries(Object.entries(g).map(([k, v]) => [k, 'b' in v ? BigInt(v.b) : v.n]));
}

function u32ToBytes(a: Uint32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function bytesToU32(b: Uint8Array): Uint32Array {
  const copy = new Uint8Array(b.byteLength);
  copy.set(b);
  return new Uint32Array(copy.buffer);
}

/** What the prepare step tells the target, its memory size aside: it boots the instance's parent (same version and init input) before pages arrive. */
export type PrepareInfo = Omit<Extract<ReceiveStep, { step: 'prepare' }>, 'step' | 'memoryBytes'>;

/** While pages travel the source asks the target this often whether it is still there (the migration's heartbeat). */
const PROBE_EVERY_MS = 250;
/** A target that answers no probe for this long is taken for dead (one that is gone answers none at once). */
const PROBE_TIMEOUT_MS = 3000;

/**
 * A PrecopyTarget whose steps are NATS requests to `targetHost`, plus its
 * abort. From prepare to commit it probes the target: a target that is
 * gone (no responders) or silent fails the step in progress at once instead
 * of after the step's timeout.
 */
export class NatsTarget implements PrecopyTarget {
  /** Set before the migration: the target hashes the instance's memory once committed (memoryHash). */
  verify = false;
  memoryHash: string | undefined;
  private prepared = false;
  private probe: NodeJS.Timeout | undefined;
  private probing = false;
  private lost: FlurryError | undefined;
  private onLost: ((err: FlurryError) => void) | undefined;
  private readonly gone = new Promise<never>((_, reject) => (this.onLost = reject));

  constructor(
    private readonly nc: NatsConnection,
    private readonly targetHost: string,
    private readonly info: PrepareInfo,
    private readonly timeoutMs: number,
    private readonly prepareTimeoutMs: number,
  ) {
    this.gone.catch(() => undefined);
  }

  /** A step; all but the commit fail as soon as the target is lost (the commit may have taken effect: it waits for its answer). */
  private async step(step: ReceiveStep, timeout = this.timeoutMs): Promise<Extract<ReceiveStepReply, { ok: true }>> {
    if (this.lost) throw this.lost;
    let reply: ReceiveStepReply;
    try {
      const request = this.nc.request(MigrationSubjects.receive(this.targetHost), encode(step), { timeout });
      reply = decode<ReceiveStepReply>((await (step.step === 'commit' ? request : Promise.race([request, this.gone]))).data);
    } catch (err) {
      if (err === this.lost) throw err;
      throw new FlurryError('unavailable', `target host ${this.targetHost} did not answer the migration step ${step.step}: ${(err as Error).message}`);
    }
    if (!reply.ok) throw FlurryError.fromWire(reply.error);
    return reply;
  }

  private startProbing(): void {
    this.probe = setInterval(() => {
      if (this.probing || this.lost) return;
      this.probing = true;
      this.nc.request(MigrationSubjects.receive(this.targetHost), encode({ step: 'ping', migrationId: this.info.migrationId } satisfies ReceiveStep), { timeout: PROBE_TIMEOUT_MS })
        .then((m) => {
          const reply = decode<ReceiveStepReply>(m.data);
          if (!reply.ok) this.fail(`target host ${this.targetHost} no longer receives this migration: ${reply.error.message}`);
        })
        .catch((err: unknown) => {
          const gone = err instanceof RequestError && err.isNoResponders();
          this.fail(gone ? `target host ${this.targetHost} is gone (no responders)` : `target host ${this.targetHost} stopped answering the migration's heartbeat for ${PROBE_TIMEOUT_MS} ms`);
        })
        .finally(() => (this.probing = false));
    }, PROBE_EVERY_MS);
  }

  private fail(message: string): void {
    if (this.lost || !this.probe) return;
    this.stopProbing();
    this.lost = new FlurryError('unavailable', message);
    this.onLost?.(this.lost);
  }

  private stopProbing(): void {
    clearInterval(this.probe);
    this.probe = undefined;
  }

  private async prepare(memoryBytes: number): Promise<void> {
    if (this.prepared) return;
    // Probed from the prepare on: booting the parent may take long, a target that dies meanwhile must not.
    this.startProbing();
    this.prepared = true;
    await this.step({ step: 'prepare', ...this.info, memoryBytes }, this.prepareTimeoutMs);
  }

  async apply(pages: Uint32Array, bytes: Uint8Array, memoryBytes: number): Promise<void> {
    await this.prepare(memoryBytes);
    const chunks = chunked(pages, bytes);
    // An empty round still tells the target the memory size.
    if (chunks.length === 0) chunks.push({ pages: new Uint8Array(0), bytes: new Uint8Array(0) });
    await this.send(chunks, memoryBytes);
  }

  async settle(): Promise<void> {
    await this.step({ step: 'settle', migrationId: this.info.migrationId });
  }

  async quiesce(): Promise<void> {
    // Nothing received yet (stop-and-copy only): no garbage of the migration's to collect.
    if (!this.prepared) return;
    await this.step({ step: 'quiesce', migrationId: this.info.migrationId });
  }

  private async send(chunks: Chunk[], memoryBytes: number): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < chunks.length) {
        const c = chunks[next++]!;
        await this.step({ step: 'apply', migrationId: this.info.migrationId, pages: c.pages, bytes: c.bytes, memoryBytes });
      }
    };
    await Promise.all(Array.from({ length: Math.min(WINDOW, chunks.length) }, worker));
  }

  /**
   * The last pages, the globals and the commit: all but the last chunk as
   * apply steps, then one commit step with the last chunk and the globals;
   * the target applies them and subscribes the instance's subject before it
   * answers, so the source may let go then.
   */
  async commit(last: { pages: Uint32Array; bytes: Uint8Array; memoryBytes: number }, globals: Record<string, GlobalValue>): Promise<CommitTiming> {
    await this.prepare(last.memoryBytes);
    const chunks = chunked(last.pages, last.bytes);
    const final = chunks.pop() ?? { pages: new Uint8Array(0), bytes: new Uint8Array(0) };
    const started = performance.now();
    if (chunks.length > 0) await this.send(chunks, last.memoryBytes);
    const sendMs = performance.now() - started;
    let reply: Extract<ReceiveStepReply, { ok: true }>;
    try {
      this.stopProbing();
      // The target refuses a commit that reaches it after the source gave up waiting (and resumed).
      const expiresAt = Date.now() + this.timeoutMs;
      reply = await this.step({ step: 'commit', migrationId: this.info.migrationId, pages: final.pages, bytes: final.bytes, memoryBytes: last.memoryBytes, globals: globalsToWire(globals), expiresAt, ...(this.verify ? { verify: true } : {}) });
      this.memoryHash = reply.memoryHash;
    } finally {
      this.stopProbing();
    }
    return { sendMs, targetCommitMs: reply.targetMs?.totalMs, targetApplyMs: reply.targetMs?.applyMs };
  }

  /** Best effort: the target drops what it received. */
  async abort(): Promise<void> {
    this.stopProbing();
    if (!this.prepared) return;
    const step: ReceiveStep = { step: 'abort', migrationId: this.info.migrationId };
    await this.nc.request(MigrationSubjects.receive(this.targetHost), encode(step), { timeout: 1000 }).catch(() => undefined);
  }
}

interface Chunk {
  pages: Uint8Array;
  bytes: Uint8Array;
}

/** Pages and their bytes in chunks of at most CHUNK_BYTES of page bytes. */
function chunked(pages: Uint32Array, bytes: Uint8Array): Chunk[] {
  const pageBytes = pages.length > 0 ? bytes.length / pages.length : 4096;
  const per = Math.max(1, Math.floor(CHUNK_BYTES / pageBytes));
  const chunks: Chunk[] = [];
  for (let i = 0; i < pages.length; i += per) {
    const end = Math.min(pages.length, i + per);
    chunks.push({ pages: u32ToBytes(pages.subarray(i, end)), bytes: bytes.subarray(i * pageBytes, end * pageBytes) });
  }
  return chunks;
}

interface Receiving extends PrepareInfo {
  /** The pool key of its parent (released if it is dropped). */
  parentKey: string;
  poolId: string;
  startedAt: number;
}

export interface ReceiverDeps {
  hostId: string;
  nc: NatsConnection;
  pool: GuestPool;
  log: Logger;
  /** The instance's parent, warm on this host (booted with its init input if need be); one user until `releaseParent`. */
  acquireParent: (spec: ParentSpec) => Promise<string>;
  releaseParent: (key: string) => void;
  /** Starts serving a received instance (subscribes its subject). */
  adopt: (r: { tenant: string; service: string; instanceId: string; poolId: string; parentKey: string; init?: Uint8Array; initData?: InitDataRef; name: string; digest: string }) => Promise<void>;
}

/** Forget a received instance whose source went silent for this long. */
const STALE_MS = 120_000;

/** The target host's side: answers ReceiveSteps. */
export class MigrationReceiver {
  private readonly receiving = new Map<string, Receiving>();

  constructor(private readonly deps: ReceiverDeps) {}

  async handle(data: Uint8Array): Promise<Uint8Array> {
    let reply: ReceiveStepReply;
    try {
      const committed = await this.step(decode<ReceiveStep>(data));
      reply = committed ? { ok: true, targetMs: { applyMs: committed.applyMs, totalMs: committed.totalMs }, ...(committed.memoryHash ? { memoryHash: committed.memoryHash } : {}) } : { ok: true };
    } catch (err) {
      reply = { ok: false, error: toWireError(err) };
    }
    return encode(reply);
  }

  private get(migrationId: string): Receiving {
    const r = this.receiving.get(migrationId);
    if (!r) throw new FlurryError('not_found', `no migration ${migrationId} is being received on host ${this.deps.hostId}`);
    return r;
  }

  /** The commit answers its timing. */
  private async step(s: ReceiveStep): Promise<{ applyMs: number; totalMs: number; memoryHash?: string } | void> {
    const { pool } = this.deps;
    switch (s.step) {
      case 'prepare': {
        this.sweep();
        if (this.receiving.has(s.migrationId)) return;
        const parentKey = await this.deps.acquireParent({ requestId: s.requestId, tenant: s.tenant, name: s.name, digest: s.digest, init: s.init, initData: s.initData });
        let poolId: string;
        try {
          poolId = await pool.receiveInstance(parentKey, { memoryBytes: s.memoryBytes });
        } catch (err) {
          this.deps.releaseParent(parentKey);
          throw err;
        }
        const { step: _s, memoryBytes: _m, ...info } = s;
        this.receiving.set(s.migrationId, { ...info, parentKey, poolId, startedAt: Date.now() });
        this.deps.log.info({ service: `${s.tenant}/${s.service}`, instanceId: s.instanceId, migrationId: s.migrationId, memoryBytes: s.memoryBytes }, 'receiving service instance');
        return;
      }
      case 'ping':
        // Only says this host is alive: a commit may have ended the migration an instant ago.
        return;
      case 'apply': {
        const r = this.get(s.migrationId);
        await pool.applyPages(r.poolId, bytesToU32(s.pages), s.bytes, s.memoryBytes);
        return;
      }
      case 'settle':
        await pool.settleReceive(this.get(s.migrationId).poolId);
        return;
      case 'quiesce':
        await pool.quiesceMigration(this.get(s.migrationId).poolId);
        return;
      case 'commit': {
        // The last pages and the globals in one step in the guest thread, then the instance's subject.
        const started = performance.now();
        const r = this.get(s.migrationId);
        const late = () => {
          if (Date.now() <= s.expiresAt) return;
          this.drop(s.migrationId, r);
          throw new FlurryError('unavailable', `the commit of migration ${s.migrationId} came after the source stopped waiting`);
        };
        late();
        const applying = performance.now();
        await pool.finishReceive(r.poolId, globalsFromWire(s.globals), { pages: bytesToU32(s.pages), bytes: s.bytes, memoryBytes: s.memoryBytes });
        const applyMs = performance.now() - applying;
        // Before the instance serves (and changes): what arrived, to compare with the source's memory at the stop.
        const memoryHash = s.verify ? (await pool.instanceMemoryHash(r.poolId)).hash : undefined;
        late();
        this.receiving.delete(s.migrationId);
        await this.deps.adopt({ tenant: r.tenant, service: r.service, instanceId: r.instanceId, poolId: r.poolId, parentKey: r.parentKey, init: r.init, initData: r.initData, name: r.name, digest: r.digest });
        this.deps.log.info({ service: `${r.tenant}/${r.service}`, instanceId: r.instanceId, ms: Date.now() - r.startedAt }, 'service instance received');
        return { applyMs, totalMs: performance.now() - started, ...(memoryHash ? { memoryHash } : {}) };
      }
      case 'abort': {
        const r = this.receiving.get(s.migrationId);
        if (r) this.drop(s.migrationId, r);
        return;
      }
    }
  }

  private drop(migrationId: string, r: Receiving): void {
    this.receiving.delete(migrationId);
    this.deps.pool.destroyInstance(r.poolId);
    this.deps.releaseParent(r.parentKey);
  }

  private sweep(): void {
    for (const [id, r] of this.receiving) if (Date.now() - r.startedAt > STALE_MS) this.drop(id, r);
  }
}
