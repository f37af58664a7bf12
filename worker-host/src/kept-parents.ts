/**
 * Which parents this host keeps for later jobs, and when it lets them go
 * (docs/jobs.md, "Kept parents"). A parent is keyed by its ParentKey (tenant,
 * module digest, init digest): a job with the same key reuses its snapshot.
 * Every job using it is a holder; once the last holder releases it the parent
 * is idle, and it is freed FLURRY_PARENT_IDLE_MS later, or earlier when the
 * idle parents together exceed FLURRY_PARENT_CACHE_MIB (least recently used
 * first). This module only decides; freeing is the caller's `free`.
 */
import { parentKeyString, type KeptParent, type ParentKey } from '@flurry/core';

export interface ParentKeeperOptions {
  idleMs: number;
  /** Most bytes of idle parents kept. */
  cacheBytes: number;
  /** Frees a parent the keeper let go of. */
  free(snapshotId: string): void;
  /** Something the host advertises changed. */
  onChange?(): void;
}

interface Entry {
  parent: Omit<KeptParent, 'holders' | 'idleSince'>;
  holders: Set<string>;
  idleSince?: number;
  timer?: NodeJS.Timeout;
}

export class ParentKeeper {
  private readonly entries = new Map<string, Entry>();
  private readonly bySnapshot = new Map<string, string>();

  constructor(private readonly opts: ParentKeeperOptions) {}

  /** The snapshot id of a parent kept with this key. */
  find(key: ParentKey): string | undefined {
    return this.entries.get(parentKeyString(key))?.parent.snapshotId;
  }

  has(snapshotId: string): boolean {
    return this.bySnapshot.has(snapshotId);
  }

  /** Since when a kept parent has had no holder; undefined while a job holds it (or it is not kept). */
  idleSince(snapshotId: string): number | undefined {
    return this.entry(snapshotId)?.idleSince;
  }

  add(parent: Omit<KeptParent, 'holders' | 'idleSince'>, holder: string): void {
    const k = parentKeyString(parent);
    this.entries.set(k, { parent, holders: new Set([holder]) });
    this.bySnapshot.set(parent.snapshotId, k);
    this.opts.onChange?.();
  }

  /** Another job uses the kept parent: it is no longer idle. */
  hold(snapshotId: string, holder: string): void {
    const e = this.entry(snapshotId);
    if (!e) return;
    e.holders.add(holder);
    clearTimeout(e.timer);
    e.timer = undefined;
    e.idleSince = undefined;
    this.opts.onChange?.();
  }

  /** A job is done with the parent; the last one leaves it idle. Releasing twice changes nothing. */
  release(snapshotId: string, holder: string): void {
    const e = this.entry(snapshotId);
    if (!e || !e.holders.delete(holder) || e.holders.size > 0) return;
    e.idleSince = Date.now();
    e.timer = setTimeout(() => this.letGo(snapshotId), this.opts.idleMs);
    e.timer.unref();
    this.enforceCap();
    this.opts.onChange?.();
  }

  /** Forgets a parent that is freed for another reason (released without a holder, host closing). */
  forget(snapshotId: string): void {
    const k = this.bySnapshot.get(snapshotId);
    if (!k) return;
    clearTimeout(this.entries.get(k)?.timer);
    this.entries.delete(k);
    this.bySnapshot.delete(snapshotId);
    this.opts.onChange?.();
  }

  list(): KeptParent[] {
    return [...this.entries.values()].map((e) => ({
      ...e.parent, holders: e.holders.size, ...(e.idleSince !== undefined ? { idleSince: e.idleSince } : {}),
    }));
  }

  private entry(snapshotId: string): Entry | undefined {
    const k = this.bySnapshot.get(snapshotId);
    return k === undefined ? undefined : this.entries.get(k);
  }

  private letGo(snapshotId: string): void {
    this.forget(snapshotId);
    this.opts.free(snapshotId);
  }

  /** Idle parents over the cache size go, least recently used first. */
  private enforceCap(): void {
    const idle = [...this.entries.values()].filter((e) => e.idleSince !== undefined).sort((a, b) => a.idleSince! - b.idleSince!);
    let bytes = idle.reduce((n, e) => n + e.parent.memoryBytes, 0);
    for (const e of idle) {
      if (bytes <= this.opts.cacheBytes) break;
      bytes -= e.parent.memoryBytes;
      this.letGo(e.parent.snapshotId);
    }
  }
}
