/**
 * Live migration of a service instance between two hosts over NATS
 * (docs/services.md, "Migration"): the pre-copy driver's target as NATS
 * requests to the target host, and the target host's side of those steps.
 * Pages travel in chunks of at most CHUNK_BYTES (well under max_payload).
 */
import type { NatsConnection } from '@nats-io/transport-node';
import {
  decode, encode, FlurryError, MigrationSubjects, toWireError,
  type Logger, type PlaceReply, type PlaceRequest, type ReceiveStep, type ReceiveStepReply, type WireGlobal,
} from '@flurry/core';
import type { GlobalValue } from '../guest/instance.js';
import type { GuestPool } from '../guest/guest-pool.js';
import type { PrecopyTarget } from './precopy.js';

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

export interface PrepareInfo {
  migrationId: string;
  requestId: string;
  tenant: string;
  service: string;
  instanceId: string;
  name: string;
  digest: string;
}

/** A PrecopyTarget whose steps are NATS requests to `targetHost`, plus its commit and abort. */
export class NatsTarget implements PrecopyTarget {
  private prepared = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly targetHost: string,
    private readonly info: PrepareInfo,
    private readonly timeoutMs: number,
    private readonly prepareTimeoutMs: number,
  ) {}

  private async step(step: ReceiveStep, timeout = this.timeoutMs): Promise<void> {
    let reply: ReceiveStepReply;
    try {
      reply = decode<ReceiveStepReply>((await this.nc.request(MigrationSubjects.receive(this.targetHost), encode(step), { timeout })).data);
    } catch (err) {
      throw new FlurryError('unavailable', `target host ${this.targetHost} did not answer the migration step ${step.step}: ${(err as Error).message}`);
    }
    if (!reply.ok) throw FlurryError.fromWire(reply.error);
  }

  async apply(pages: Uint32Array, bytes: Uint8Array, memoryBytes: number): Promise<void> {
    if (!this.prepared) {
      await this.step({ step: 'prepare', ...this.info, memoryBytes }, this.prepareTimeoutMs);
      this.prepared = true;
    }
    const pageBytes = pages.length > 0 ? bytes.length / pages.length : 4096;
    const per = Math.max(1, Math.floor(CHUNK_BYTES / pageBytes));
    const chunks: { pages: Uint8Array; bytes: Uint8Array }[] = [];
    for (let i = 0; i < pages.length; i += per) {
      const end = Math.min(pages.length, i + per);
      chunks.push({ pages: u32ToBytes(pages.subarray(i, end)), bytes: bytes.subarray(i * pageBytes, end * pageBytes) });
    }
    // An empty round still tells the target the memory size.
    if (chunks.length === 0) chunks.push({ pages: new Uint8Array(0), bytes: new Uint8Array(0) });
    let next = 0;
    const worker = async () => {
      while (next < chunks.length) {
        const c = chunks[next++]!;
        await this.step({ step: 'apply', migrationId: this.info.migrationId, pages: c.pages, bytes: c.bytes, memoryBytes });
      }
    };
    await Promise.all(Array.from({ length: Math.min(WINDOW, chunks.length) }, worker));
  }

  async finish(globals: Record<string, GlobalValue>): Promise<void> {
    await this.step({ step: 'finish', migrationId: this.info.migrationId, globals: globalsToWire(globals) });
  }

  /** The target starts answering the instance's subject (before the source lets go). */
  commit(): Promise<void> {
    return this.step({ step: 'commit', migrationId: this.info.migrationId });
  }

  /** Best effort: the target drops what it received. */
  async abort(): Promise<void> {
    if (!this.prepared) return;
    await this.step({ step: 'abort', migrationId: this.info.migrationId }, 1000).catch(() => undefined);
  }
}

interface Receiving extends PrepareInfo {
  poolId: string;
  startedAt: number;
}

export interface ReceiverDeps {
  hostId: string;
  nc: NatsConnection;
  pool: GuestPool;
  log: Logger;
  ensureWarm: (req: PlaceRequest) => Promise<PlaceReply>;
  warmKey: (tenant: string, name: string, digest: string) => string;
  /** Starts serving a received instance (subscribes its subject). */
  adopt: (r: { tenant: string; service: string; instanceId: string; poolId: string }) => Promise<void>;
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
      await this.step(decode<ReceiveStep>(data));
      reply = { ok: true };
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

  private async step(s: ReceiveStep): Promise<void> {
    const { pool } = this.deps;
    switch (s.step) {
      case 'prepare': {
        this.sweep();
        if (this.receiving.has(s.migrationId)) return;
        const placed = await this.deps.ensureWarm({ requestId: s.requestId, tenant: s.tenant, name: s.name, digest: s.digest });
        if (!placed.ok) throw FlurryError.fromWire(placed.error);
        const poolId = await pool.receiveInstance(this.deps.warmKey(s.tenant, s.name, s.digest), { memoryBytes: s.memoryBytes });
        const { step: _s, memoryBytes: _m, ...info } = s;
        this.receiving.set(s.migrationId, { ...info, poolId, startedAt: Date.now() });
        this.deps.log.info({ service: `${s.tenant}/${s.service}`, instanceId: s.instanceId, migrationId: s.migrationId, memoryBytes: s.memoryBytes }, 'receiving service instance');
        return;
      }
      case 'apply': {
        const r = this.get(s.migrationId);
        await pool.applyPages(r.poolId, bytesToU32(s.pages), s.bytes, s.memoryBytes);
        return;
      }
      case 'finish': {
        const r = this.get(s.migrationId);
        await pool.finishReceive(r.poolId, globalsFromWire(s.globals));
        return;
      }
      case 'commit': {
        const r = this.get(s.migrationId);
        this.receiving.delete(s.migrationId);
        await this.deps.adopt({ tenant: r.tenant, service: r.service, instanceId: r.instanceId, poolId: r.poolId });
        this.deps.log.info({ service: `${r.tenant}/${r.service}`, instanceId: r.instanceId, ms: Date.now() - r.startedAt }, 'service instance received');
        return;
      }
      case 'abort': {
        const r = this.receiving.get(s.migrationId);
        if (!r) return;
        this.receiving.delete(s.migrationId);
        pool.destroyInstance(r.poolId);
        return;
      }
    }
  }

  private sweep(): void {
    for (const [id, r] of this.receiving) {
      if (Date.now() - r.startedAt > STALE_MS) {
        this.receiving.delete(id);
        this.deps.pool.destroyInstance(r.poolId);
      }
    }
  }
}
