import { describe, expect, it } from 'vitest';
import type { BrokerLink, JobRecord } from '@flurry/core';
import { GatewayMetrics } from './gateway-metrics.js';

const link = { onChange: () => () => undefined } as unknown as BrokerLink;

/** A sample's value (a histogram's `_count` or `_sum` by that name), summed over the series whose labels include `labels`. */
const value = async (m: GatewayMetrics, name: string, labels: Record<string, string> = {}) => {
  const metric = m.registry.getSingleMetric(name) ?? m.registry.getSingleMetric(name.replace(/_(count|sum)$/, ''));
  const { values } = await metric!.get();
  return values
    .filter((v) => ((v as { metricName?: string }).metricName ?? name) === name && Object.entries(labels).every(([k, l]) => String(v.labels[k]) === l))
    .reduce((sum, v) => sum + v.value, 0);
};

describe('gateway metrics', () => {
  it('calls - by tenant, function and outcome, with their latency by function', async () => {
    const m = new GatewayMetrics(link);
    m.call('t1', 'echo', 'ok', 0.002);
    m.call('t1', 'echo', 'timeout', 15);
    m.call('t2', 'echo', 'ok', 0.001);
    expect(await value(m, 'flurry_calls_total', { tenant: 't1', function: 'echo', outcome: 'ok' })).toBe(1);
    expect(await value(m, 'flurry_calls_total', { outcome: 'timeout' })).toBe(1);
    expect(await value(m, 'flurry_call_duration_seconds_count', { tenant: 't1' })).toBe(2);
    expect(await value(m, 'flurry_call_duration_seconds_sum', { tenant: 't2' })).toBeCloseTo(0.001);
  });

  it('service requests - by tenant, service and outcome, with their latency by service', async () => {
    const m = new GatewayMetrics(link);
    m.serviceRequest('t1', 'room', 'ok', 0.004);
    m.serviceRequest('t1', 'room', 'unavailable', 1);
    expect(await value(m, 'flurry_service_requests_total', { service: 'room', outcome: 'ok' })).toBe(1);
    expect(await value(m, 'flurry_service_requests_total', { outcome: 'unavailable' })).toBe(1);
    expect(await value(m, 'flurry_service_request_duration_seconds_count', { tenant: 't1', service: 'room' })).toBe(2);
  });

  it('jobs - an ended job\'s duration by state and boot; its clones done, failed and not run', async () => {
    const m = new GatewayMetrics(link);
    const job = { clones: 5, state: 'cancelled', createdAt: 1000, finishedAt: 3500, counts: { done: 2, failed: 1, running: 0, pending: 2 } } as JobRecord;
    m.jobEnded(job);
    m.jobEnded({ ...job, state: 'done', boot: 'cold', finishedAt: 2000, counts: { done: 5, failed: 0, running: 0, pending: 0 } });
    expect(await value(m, 'flurry_job_duration_seconds_count', { state: 'cancelled', boot: 'fork' })).toBe(1);
    expect(await value(m, 'flurry_job_duration_seconds_sum', { state: 'cancelled' })).toBe(2.5);
    expect(await value(m, 'flurry_job_duration_seconds_count', { state: 'done', boot: 'cold' })).toBe(1);
    expect(await value(m, 'flurry_job_clones_total', { outcome: 'done' })).toBe(7);
    expect(await value(m, 'flurry_job_clones_total', { outcome: 'failed' })).toBe(1);
    expect(await value(m, 'flurry_job_clones_total', { outcome: 'not_run' })).toBe(2);
    expect(await value(m, 'flurry_job_tasks_total')).toBe(0);
  });

  it('jobs - an ended task job\'s tasks done, backups handed out, duplicate results dropped and failures', async () => {
    const m = new GatewayMetrics(link);
    const tasks = { total: 40, done: 40, running: 0, backups: 3, duplicates: 2, failures: 1 };
    m.jobEnded({ clones: 4, state: 'done', createdAt: 0, finishedAt: 10, counts: { done: 4, failed: 0, running: 0, pending: 0 }, tasks } as JobRecord);
    m.jobEnded({ clones: 4, state: 'failed', createdAt: 0, finishedAt: 10, counts: { done: 0, failed: 0, running: 0, pending: 4 }, tasks: { ...tasks, done: 7 } } as JobRecord);
    expect(await value(m, 'flurry_job_tasks_total', { outcome: 'done' })).toBe(47);
    expect(await value(m, 'flurry_job_tasks_total', { outcome: 'backup' })).toBe(6);
    expect(await value(m, 'flurry_job_tasks_total', { outcome: 'duplicate' })).toBe(4);
    expect(await value(m, 'flurry_job_tasks_total', { outcome: 'failed' })).toBe(2);
  });
});
