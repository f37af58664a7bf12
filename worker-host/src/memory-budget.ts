/**
 * The host's memory budget (FLURRY_HOST_MEMORY_BUDGET): one ledger of what
 * the host holds for later work — warm parents and snapshots, kept parents,
 * page caches, service instances — each counted by the memory it actually
 * commits, read when asked (a snapshot's bytes, the chunks a page cache
 * holds, an instance's memory as it last grew).
 *
 * A new placement asks `admit(bytes)` first. When the holdings and the
 * admissions under way leave too little room, idle holdings that their owner
 * can give back (idle warm parents, idle kept parents, unused page caches) are
 * evicted, least recently used first; if that still leaves too little,
 * admission fails with `no_capacity` and a retry hint. Nothing busy is ever
 * evicted: a running call, a parent a job holds and a service instance stay.
 *
 *   const admitted = budget.admit(initialBytes, 'the parent of t/fn');
 *   try { ...make it...; budget.track(id, { kind: 'snapshot', bytes: () => n }); }
 *   finally { admitted.done(); }
 *   budget.evictable(id, { idleSince: () => busy ? undefined : lastUsed, evict: () => free() });
 */
import { FlurryError } from '@flurry/core';

/** A snapshot is a warm parent's (of functions, jobs or services); a page cache holds another host's snapshot's pages. */
export type HoldingKind = 'snapshot' | 'page cache' | 'service instance';

export interface Holding {
  kind: HoldingKind;
  /** Bytes it commits now. */
  bytes(): number;
}

export interface Evictor {
  /** When it was last used if it is idle now (evictable); undefined while something uses it. */
  idleSince(): number | undefined;
  /** Gives it back; its owner untracks it. */
  evict(): void;
}

/** An admission under way: counted as in use until done() (the holding is tracked by then, or it failed). */
export interface Admission {
  done(): void;
}

export interface MemoryUse {
  budgetBytes: number;
  usedBytes: number;
}

/** How long a refused placement is told to wait: idle parents and caches age out, calls finish. */
export const NO_ROOM_RETRY_AFTER_S = 2;

export class MemoryBudget {
  private readonly holdings = new Map<string, Holding>();
  private readonly evictors = new Map<string, Evictor>();
  private admitting = 0;

  constructor(
    readonly budgetBytes: number,
    private readonly onEvict?: (id: string, kind: HoldingKind, bytes: number) => void,
  ) {
    if (!(budgetBytes > 0)) throw new RangeError(`a memory budget must be positive, got ${budgetBytes}`);
  }

  /** Counts a holding (replacing one with the same id). */
  track(id: string, holding: Holding): void {
    this.holdings.set(id, holding);
  }

  /** Stops counting a holding, and forgets how to evict it. Unknown ids are ignored. */
  untrack(id: string): void {
    this.holdings.delete(id);
    this.evictors.delete(id);
  }

  /** Lets the budget evict a tracked holding while it is idle. */
  evictable(id: string, evictor: Evictor): void {
    this.evictors.set(id, evictor);
  }

  /** Bytes held now, admissions under way included. */
  get usedBytes(): number {
    let used = this.admitting;
    for (const h of this.holdings.values()) used += h.bytes();
    return used;
  }

  /** Bytes held now by kind of holding (metrics, read when scraped). */
  usedByKind(): Record<HoldingKind, number> {
    const used: Record<HoldingKind, number> = { snapshot: 0, 'page cache': 0, 'service instance': 0 };
    for (const h of this.holdings.values()) used[h.kind] += h.bytes();
    return used;
  }

  use(): MemoryUse {
    return { budgetBytes: this.budgetBytes, usedBytes: this.usedBytes };
  }

  /**
   * Makes room for `bytes` more, evicting idle holdings least recently used
   * first; counts them as in use until done(). Throws no_capacity (with a
   * retry hint) when even evicting every idle holding leaves too little.
   */
  admit(bytes: number, what: string): Admission {
    const need = Math.max(0, bytes);
    let used = this.usedBytes;
    if (used + need > this.budgetBytes) used = this.evictFor(need, used);
    if (used + need > this.budgetBytes) {
      throw new FlurryError('no_capacity', `this host's memory budget is full: ${what} needs ${need} bytes, ${used} of ${this.budgetBytes} are held by work in use`, { retryAfterSeconds: NO_ROOM_RETRY_AFTER_S });
    }
    this.admitting += need;
    let open = true;
    return {
      done: () => {
        if (!open) return;
        open = false;
        this.admitting -= need;
      },
    };
  }

  /** Evicts idle holdings, oldest first, until `need` fits; answers the bytes still used. */
  private evictFor(need: number, used: number): number {
    const idle: { id: string; since: number; evictor: Evictor }[] = [];
    for (const [id, evictor] of this.evictors) {
      const since = this.holdings.has(id) ? evictor.idleSince() : undefined;
      if (since !== undefined) idle.push({ id, since, evictor });
    }
    // Evicting cannot make room that is not there: leave everything in place then.
    const freeable = idle.reduce((n, c) => n + (this.holdings.get(c.id)?.bytes() ?? 0), 0);
    if (used - freeable + need > this.budgetBytes) return used;
    idle.sort((a, b) => a.since - b.since);
    for (const { id, evictor } of idle) {
      if (used + need <= this.budgetBytes) break;
      const holding = this.holdings.get(id);
      if (!holding) continue;
      const bytes = holding.bytes();
      evictor.evict();
      // Counted as freed even if the owner frees it a moment later: it is on its way out and takes no new work.
      this.untrack(id);
      used -= bytes;
      this.onEvict?.(id, holding.kind, bytes);
    }
    return used;
  }
}
