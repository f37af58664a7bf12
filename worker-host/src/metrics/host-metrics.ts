/**
 * A worker host's Prometheus metrics (docs/observability.md), in a registry
 * of this host's own, each counted where the fact is already known: cold
 * starts when a function is placed, each clone's CloneResult (fork latency,
 * pages by source, fault wait), a migration's report on its source host,
 * and, read when scraped, the guest queue and the memory budget's ledger.
 * Served on the metrics listener (core/src/metrics-listener.ts): a host has
 * no HTTP server of its own.
 */
import { countReconnects, type BrokerLink, type CloneResult, type PageCounts } from '@flurry/core';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { HoldingKind, MemoryBudget } from '../memory-budget.js';
import type { PrecopyReport } from '../migration/precopy.js';

/** What is read at scrape time: the guest pool's queue and threads. */
export interface GuestLoad {
  readonly queued: number;
  readonly running: number;
}

/** Seconds: a clone starts in under a millisecond from a local parent, in seconds when it waits on a busy pool. */
const FAST_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Seconds: a cold start fetches, compiles and runs init. */
const SLOW_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Pre-copy rounds: 0 (stop-and-copy only) to the default cap of 30. */
const ROUND_BUCKETS = [0, 1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30];

const PAGE_SOURCES = ['local', 'multicast', 'unicast', 'zero'] as const satisfies readonly (keyof PageCounts)[];
/** The memory budget's holding kinds as label values. */
const KIND_LABEL: Record<HoldingKind, string> = { snapshot: 'snapshot', 'page cache': 'page_cache', 'service instance': 'service_instance' };

/** The guest log publisher's totals (guest-log-publisher.ts). */
export interface GuestLogCounts {
  readonly published: number;
  readonly dropped: number;
}

export class HostMetrics {
  readonly registry = new Registry();
  private readonly coldStarts = new Histogram({
    name: 'flurry_cold_start_seconds', help: 'Function versions placed on this host (a cold start: fetch, compile, init), by how long it took',
    buckets: SLOW_BUCKETS, registers: [this.registry],
  });
  private readonly forkStart = new Histogram({
    name: 'flurry_fork_start_seconds', help: 'Fork latency: from this host receiving a fork request to the clone running',
    buckets: FAST_BUCKETS, registers: [this.registry],
  });
  private readonly clones = new Counter({
    name: 'flurry_clones_total', help: 'Clones this host ran, by outcome', labelNames: ['outcome'] as const, registers: [this.registry],
  });
  private readonly pages = new Counter({
    name: 'flurry_clone_pages_total', help: 'Pages the clones of this host touched, by where they came from (local, multicast, unicast, zero)',
    labelNames: ['source'] as const, registers: [this.registry],
  });
  private readonly faultWait = new Histogram({
    name: 'flurry_clone_fault_wait_seconds', help: 'Per clone, the time its page faults waited for pages from another host',
    buckets: FAST_BUCKETS, registers: [this.registry],
  });
  private readonly migrationRounds = new Histogram({
    name: 'flurry_migration_rounds', help: 'Pre-copy rounds of the service instance migrations this host was the source of',
    buckets: ROUND_BUCKETS, registers: [this.registry],
  });
  private readonly migrationPause = new Histogram({
    name: 'flurry_migration_pause_seconds', help: 'The pause of each migration: from stopping the instance to the commit (requests wait)',
    buckets: FAST_BUCKETS, registers: [this.registry],
  });
  private readonly migrationTotal = new Histogram({
    name: 'flurry_migration_duration_seconds', help: 'Each migration from its first round to the commit', buckets: SLOW_BUCKETS, registers: [this.registry],
  });
  private readonly migrations = new Counter({
    name: 'flurry_migrations_total', help: 'Migrations this host was the source of, by outcome', labelNames: ['outcome'] as const, registers: [this.registry],
  });
  private readonly migrationPages = new Counter({
    name: 'flurry_migration_pages_total', help: 'Pages sent by the migrations this host was the source of (every round and stop-and-copy)', registers: [this.registry],
  });

  constructor(link: BrokerLink) {
    countReconnects(this.registry, link);
  }

  /** Gauges read when scraped: nothing is counted on the call path. */
  watch(pool: GuestLoad, budget: MemoryBudget, guestLogs: GuestLogCounts): void {
    new Counter({
      name: 'flurry_guest_log_batches_total', help: 'Batches of guest log lines: published to the guest logs stream, or dropped (broker away, queue full, not acknowledged)',
      labelNames: ['outcome'] as const, registers: [this.registry],
      collect() {
        // The publisher counts; a scrape copies its totals (a counter only grows, and so do they).
        this.reset();
        this.inc({ outcome: 'published' }, guestLogs.published);
        this.inc({ outcome: 'dropped' }, guestLogs.dropped);
      },
    });
    new Gauge({ name: 'flurry_guest_queue_depth', help: 'Calls and clones waiting for a free guest thread', registers: [this.registry], collect() {
      this.set(pool.queued);
    } });
    new Gauge({ name: 'flurry_guest_running', help: 'Calls and clones running in guest threads now', registers: [this.registry], collect() {
      this.set(pool.running);
    } });
    new Gauge({ name: 'flurry_memory_budget_bytes', help: 'This host\'s memory budget (FLURRY_HOST_MEMORY_BUDGET)', registers: [this.registry], collect() {
      this.set(budget.budgetBytes);
    } });
    new Gauge({
      name: 'flurry_memory_used_bytes', help: 'Memory budget used, by holding: snapshot (warm and kept parents), page_cache (other hosts\' snapshots), service_instance',
      labelNames: ['kind'] as const, registers: [this.registry],
      collect() {
        const used = budget.usedByKind();
        for (const kind of Object.keys(KIND_LABEL) as HoldingKind[]) this.set({ kind: KIND_LABEL[kind] }, used[kind]);
      },
    });
  }

  /** A function version was placed here; `initMs` from the placement. */
  coldStart(initMs: number): void {
    this.coldStarts.observe(initMs / 1000);
  }

  /** A clone of a fork ended here (its CloneResult, as delivered). */
  cloneEnded(result: CloneResult): void {
    this.clones.inc({ outcome: result.ok ? 'done' : 'failed' });
    // A clone that never started has no fork latency.
    if (result.startMs >= 0) this.forkStart.observe(result.startMs / 1000);
    for (const source of PAGE_SOURCES) if (result.pages[source] > 0) this.pages.inc({ source }, result.pages[source]);
    this.faultWait.observe(result.faultWaitMs / 1000);
  }

  /** A migration from this host committed. */
  migrated(report: PrecopyReport): void {
    this.migrations.inc({ outcome: 'committed' });
    this.migrationRounds.observe(report.rounds.length);
    this.migrationPause.observe(report.downtimeMs / 1000);
    this.migrationTotal.observe(report.totalMs / 1000);
    this.migrationPages.inc(report.pagesSent);
  }

  /** A migration from this host failed (the instance stays here, or its outcome is unknown). */
  migrationFailed(): void {
    this.migrations.inc({ outcome: 'failed' });
  }
}
