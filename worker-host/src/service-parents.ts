/**
 * The warm parents that service instances are cloned from (docs/services.md),
 * one per (function version, init input) on this host. Without init input it
 * is the function version's own warm parent, shared with invocations and
 * placed as the scheduler places it. With one, it is a parent of the
 * services' own, booted here once with that input and kept while instances
 * (made or received) use it, and LINGER_MS after the last one is gone: an
 * instance migrated away may come back, and freeing a large snapshot takes
 * long enough that it must not happen inside a migration's pause.
 */
import type { ObjectStore } from '@nats-io/obj';
import { FlurryError, initDigest, type CreateInstanceRequest, type InitDataRef, type ParentKey, type PlaceReply, type PlaceRequest } from '@flurry/core';
import type { GuestPool } from './guest/guest-pool.js';
import { snapshotDigest } from './migration/parent-digest.js';
import { fetchModule } from './module-store.js';
import { checkDataRef } from './request-rights.js';

/**
 * A parent as an instance request names it: the function version and its init input (`init`, or the
 * upload `initData` read from its store when the parent boots; neither: the version's shared parent).
 */
export type ParentSpec = Pick<CreateInstanceRequest, 'requestId' | 'tenant' | 'name' | 'digest' | 'init' | 'initData'>;

export interface ServiceParentsDeps {
  pool: GuestPool;
  modules: ObjectStore;
  /** Warms the function version on this host (as placement does); resolves once it is warm. */
  ensureWarm: (req: PlaceRequest) => Promise<PlaceReply>;
  /** The pool key of a warm function version. */
  warmKey: (tenant: string, name: string, digest: string) => string;
  /** The bytes of an uploaded object, checked against its digest. */
  readData: (ref: InitDataRef) => Promise<Uint8Array>;
}

/** How long a parent booted with an init input outlives its last instance here. */
const LINGER_MS = 30_000;

export class ServiceParents {
  /**
   * Parents booted with an init input, by pool key: how many instances use each, the eviction pending when none
   * does, and whether its digest (which a migration to or from here compares) is made.
   */
  private readonly own = new Map<string, { users: number; ready: Promise<unknown>; evict?: NodeJS.Timeout; parent: ParentKey; digested: boolean }>();
  /** Standby holds (hold()): one user of a parent each, until `until`. */
  private readonly standby = new Map<string, { until: number; ready: Promise<string> }>();

  constructor(private readonly deps: ServiceParentsDeps) {}

  /** The pool key of the spec's parent, warm once this resolves; counts one user until release(key). */
  async acquire(spec: ParentSpec): Promise<string> {
    const { pool, ensureWarm, warmKey } = this.deps;
    checkDataRef(spec.tenant, spec.initData);
    if (!spec.initData && (!spec.init || spec.init.length === 0)) {
      const placed = await ensureWarm({ requestId: spec.requestId, tenant: spec.tenant, name: spec.name, digest: spec.digest });
      if (!placed.ok) throw FlurryError.fromWire(placed.error);
      return warmKey(spec.tenant, spec.name, spec.digest);
    }
    const key = `${warmKey(spec.tenant, spec.name, spec.digest)}#init-${initId(spec)}`;
    let entry = this.own.get(key);
    if (!entry) {
      const { initData } = spec;
      const init = initData ? this.deps.readData(initData) : Promise.resolve(spec.init!);
      const ready = Promise.all([fetchModule(this.deps.modules, spec.tenant, spec.digest), init]).then(([bytes, input]) => pool.warm(key, bytes, input, spec.requestId, spec.tenant));
      entry = { users: 0, ready, parent: { tenant: spec.tenant, moduleDigest: spec.digest, initDigest: initDigest(spec.init ?? new Uint8Array(), spec.initData) }, digested: false };
      this.own.set(key, entry);
      const made = entry;
      ready.then(
        // Its digest, which a migration's round 0 needs, hashed now (paced, once per parent) rather than in a migration.
        () => snapshotDigest(pool.snapshotImage(key)).then(() => (made.digested = true)).catch(() => undefined),
        () => {
          // An init that failed is tried afresh by the next instance.
          if (this.own.get(key) === made) this.own.delete(key);
          void pool.evict(key);
        },
      );
    }
    entry.users++;
    clearTimeout(entry.evict);
    entry.evict = undefined;
    await entry.ready;
    return key;
  }

  /**
   * Keeps the spec's parent warm for `ms` without an instance (a standby for
   * the service's next scale-out here); a later hold of the same parent
   * renews it. Resolves once the parent is warm.
   */
  async hold(spec: ParentSpec, ms: number): Promise<void> {
    const id = this.parentId(spec);
    const held = this.standby.get(id);
    if (held) {
      held.until = Date.now() + ms;
      await held.ready;
      return;
    }
    const entry = { until: Date.now() + ms, ready: this.acquire(spec) };
    this.standby.set(id, entry);
    let key: string | undefined;
    let releaseThread: () => void;
    try {
      key = await entry.ready;
      releaseThread = this.reserveThread(spec.tenant);
    } catch (err) {
      this.standby.delete(id);
      if (key !== undefined) this.release(key);
      throw err;
    }
    const expire = () => {
      const left = entry.until - Date.now();
      if (left > 0) return void setTimeout(expire, left).unref();
      this.standby.delete(id);
      releaseThread();
      this.release(key);
    };
    expire();
  }

  /**
   * A standby keeps an instance thread of its tenant too (booted now, beside the parent, rather than in a
   * migration to here); none when the host runs its most instance threads: a migration here then takes the spare.
   */
  private reserveThread(tenant: string): () => void {
    try {
      return this.deps.pool.reserveInstanceThread(tenant);
    } catch (err) {
      if (err instanceof FlurryError && err.code === 'no_capacity') return () => undefined;
      throw err;
    }
  }

  /** The parents booted with an init input that are warm here with their digest made (for the heartbeat). */
  warmParents(): ParentKey[] {
    return [...this.own.values()].filter((e) => e.digested).map((e) => e.parent);
  }

  private parentId(spec: ParentSpec): string {
    return `${spec.tenant}/${spec.name}@${spec.digest}#${spec.initData || (spec.init && spec.init.length > 0) ? initId(spec) : ''}`;
  }

  /** One user of the key is gone; a parent of the services' own is evicted LINGER_MS after its last user. */
  release(key: string): void {
    const entry = this.own.get(key);
    if (!entry || --entry.users > 0) return;
    entry.evict = setTimeout(() => {
      if (this.own.get(key) !== entry || entry.users > 0) return;
      this.own.delete(key);
      void this.deps.pool.evict(key);
    }, LINGER_MS);
    entry.evict.unref();
  }
}

/** Names a parent's init input: an upload by its digest (its bytes are read only to boot), inline bytes by theirs. */
function initId(spec: ParentSpec): string {
  const digest = initDigest(spec.init ?? new Uint8Array(), spec.initData).replace(/^sha256:/, '').slice(0, 16);
  return spec.initData ? `data-${digest}` : digest;
}
