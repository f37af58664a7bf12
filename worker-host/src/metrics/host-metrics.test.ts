import { describe, expect, it } from 'vitest';
import type { BrokerLink, CloneResult } from '@flurry/core';
import { MemoryBudget } from '../memory-budget.js';
import type { PrecopyReport } from '../migration/precopy.js';
import { HostMetrics } from './host-metrics.js';

/** A link that reports changes when told: what countReconnects listens to. */
function fakeLink() {
  const listeners: ((up: boolean) => void)[] = [];
  const link = { onChange: (l: (up: boolean) => void) => (listeners.push(l), () => undefined) } as unknown as BrokerLink;
  return { link, set: (up: boolean) => listeners.forEach((l) => l(up)) };
}

/** A sample's value (a histogram's `_count` or `_sum` by that name), summed over the series whose labels include `labels`. */
const value = async (m: HostMetrics, name: string, labels: Record<string, string> = {}) => {
  const metric = m.registry.getSingleMetric(name) ?? m.registry.getSingleMetric(name.replace(/_(count|sum)$/, ''));
  const { values } = await metric!.get();
  return values
    .filter((v) => ((v as { metricName?: string }).metricName ?? name) === name && Object.entries(labels).every(([k, l]) => String(v.labels[k]) === l))
    .reduce((sum, v) => sum + v.value, 0);
};

describe('host metrics', () => {
  it('clone results - outcome, fork latency only for clones that started, pages by source, fault wait', async () => {
    const m = new HostMetrics(fakeLink().link);
    const ok: CloneResult = { requestId: 'r', hostId: 'h', index: 0, ok: true, startMs: 2, runMs: 5, pages: { local: 10, multicast: 3, unicast: 2, zero: 1 }, faultWaitMs: 4 };
    m.cloneEnded(ok);
    m.cloneEnded({ ...ok, index: 1, ok: false, startMs: -1, pages: { local: 0, multicast: 0, unicast: 0, zero: 0 }, faultWaitMs: 0 });
    expect(await value(m, 'flurry_clones_total', { outcome: 'done' })).toBe(1);
    expect(await value(m, 'flurry_clones_total', { outcome: 'failed' })).toBe(1);
    expect(await value(m, 'flurry_fork_start_seconds_count')).toBe(1);
    expect(await value(m, 'flurry_fork_start_seconds_sum')).toBeCloseTo(0.002);
    expect(await value(m, 'flurry_clone_pages_total', { source: 'local' })).toBe(10);
    expect(await value(m, 'flurry_clone_pages_total', { source: 'multicast' })).toBe(3);
    expect(await value(m, 'flurry_clone_pages_total', { source: 'unicast' })).toBe(2);
    expect(await value(m, 'flurry_clone_pages_total', { source: 'zero' })).toBe(1);
    expect(await value(m, 'flurry_clone_fault_wait_seconds_sum')).toBeCloseTo(0.004);
  });

  it('migrations - rounds, pause, duration and pages of a committed one; a failed one counted apart', async () => {
    const m = new HostMetrics(fakeLink().link);
    const report = { rounds: [{}, {}, {}], downtimeMs: 12, totalMs: 300, pagesSent: 40 } as unknown as PrecopyReport;
    m.migrated(report);
    m.migrationFailed();
    expect(await value(m, 'flurry_migrations_total', { outcome: 'committed' })).toBe(1);
    expect(await value(m, 'flurry_migrations_total', { outcome: 'failed' })).toBe(1);
    expect(await value(m, 'flurry_migration_rounds_sum')).toBe(3);
    expect(await value(m, 'flurry_migration_pause_seconds_sum')).toBeCloseTo(0.012);
    expect(await value(m, 'flurry_migration_duration_seconds_sum')).toBeCloseTo(0.3);
    expect(await value(m, 'flurry_migration_pages_total')).toBe(40);
  });

  it('gauges - read from the pool, the budget and the log publisher when scraped; reconnects counted when the link comes back', async () => {
    const { link, set } = fakeLink();
    const m = new HostMetrics(link);
    const pool = { queued: 3, running: 2 };
    const budget = new MemoryBudget(1 << 20);
    budget.track('a', { kind: 'snapshot', bytes: () => 4096 });
    budget.track('b', { kind: 'page cache', bytes: () => 8192 });
    const logs = { published: 5, dropped: 1 };
    m.watch(pool, budget, logs);
    expect(await value(m, 'flurry_guest_log_batches_total', { outcome: 'published' })).toBe(5);
    logs.published = 7;
    expect(await value(m, 'flurry_guest_log_batches_total', { outcome: 'published' })).toBe(7);
    expect(await value(m, 'flurry_guest_log_batches_total', { outcome: 'dropped' })).toBe(1);
    expect(await value(m, 'flurry_guest_queue_depth')).toBe(3);
    pool.queued = 0;
    expect(await value(m, 'flurry_guest_queue_depth')).toBe(0);
    expect(await value(m, 'flurry_guest_running')).toBe(2);
    expect(await value(m, 'flurry_memory_budget_bytes')).toBe(1 << 20);
    expect(await value(m, 'flurry_memory_used_bytes', { kind: 'snapshot' })).toBe(4096);
    expect(await value(m, 'flurry_memory_used_bytes', { kind: 'page_cache' })).toBe(8192);
    expect(await value(m, 'flurry_memory_used_bytes', { kind: 'service_instance' })).toBe(0);
    set(false);
    set(true);
    expect(await value(m, 'flurry_nats_reconnects_total')).toBe(1);
  });

  it('registries - two hosts in one process keep their own counts', async () => {
    const a = new HostMetrics(fakeLink().link);
    const b = new HostMetrics(fakeLink().link);
    a.coldStart(1500);
    expect(await value(a, 'flurry_cold_start_seconds_count')).toBe(1);
    expect(await value(b, 'flurry_cold_start_seconds_count')).toBe(0);
  });
});
