// Metrics and traces (docs/observability.md): a real nats-server, a gateway and
// two worker hosts, each serving /metrics on a listener of its own. Each test
// scrapes before and after something the fleet does (function calls, a fork
// job, a service instance's migration, a broker restart) and finds the
// counters and histograms moved by what the API reported; a traceparent sent
// to the gateway shows up on the host's log lines for that call.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobRecord, PageCounts } from '@flurry/core';
import { LocalFleet } from '../infra/src/local-fleet.js';
import { deploy, guestProgram } from './helpers/functions.js';
import { gatewayApi, json, until } from './helpers/gateway-api.js';
import { b64, finishedJob } from './helpers/jobs.js';
import { has, scrape, total, type Sample } from './helpers/metrics.js';
import { wat } from './helpers/wat.js';

const HOSTS = ['host-1', 'host-2'];
const GUEST_LINE = 'hello from the guest';

/** A function whose `handle` logs one line at info, then answers "ok"; `trap`: it traps instead of answering. */
const loggerModule = (trap = false) => wat(`(module
  (import "flurry" "log" (func $log (param i32 i32 i32)))
  (import "flurry" "output_write" (func $out (param i32 i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0) "ok${GUEST_LINE}")
  (func (export "handle") (result i32)
    (call $log (i32.const 1) (i32.const 2) (i32.const ${GUEST_LINE.length}))
    ${trap ? 'unreachable' : '(call $out (i32.const 0) (i32.const 2)) (i32.const 0)'}))`);

let fleet: LocalFleet;
const api = gatewayApi(() => fleet.url);
/** Every log line of the fleet's processes, parsed, with the process that wrote it. */
const lines: { service: string; line: Record<string, unknown> }[] = [];

beforeAll(async () => {
  fleet = await LocalFleet.start({
    hosts: HOSTS.length,
    // Debug: the gateway's line for each request and a host's for each fork request (with their trace ids) are at debug level.
    hostEnv: { FLURRY_GUEST_THREADS: '2', FLURRY_HEARTBEAT_MS: '200', LOG_LEVEL: 'debug' },
    // No consolidation: nothing moves but what a test moves.
    gatewayEnv: { LOG_LEVEL: 'debug', FLURRY_CONSOLIDATE_MS: '0' },
    onLine: (service, line) => {
      if (line.startsWith('{')) lines.push({ service, line: JSON.parse(line) as Record<string, unknown> });
    },
  });
  for (const [name, bytes] of [['room', guestProgram('room')], ['pattern', guestProgram('pattern')], ['logger', loggerModule()], ['trapper', loggerModule(true)]] as const) {
    const res = await deploy(fleet.url, name, bytes);
    expect(res.status, await res.text()).toBe(201);
  }
}, 60_000);

afterAll(async () => {
  await fleet?.stop();
});

/** Every process's samples now: the gateway's and each host's. */
async function scrapeAll(): Promise<Record<string, Sample[]>> {
  const names = ['gateway', ...HOSTS];
  const all = await Promise.all(names.map(async (n) => scrape(await fleet.metricsUrl(n))));
  return Object.fromEntries(names.map((n, i) => [n, all[i]!]));
}

/** A metric summed over the hosts. */
const onHosts = (s: Record<string, Sample[]>, name: string, labels?: Record<string, string>) => HOSTS.reduce((sum, h) => sum + total(s[h]!, name, labels), 0);

describe('metrics', () => {
  it('metrics - each process serves /metrics on its own listener, nothing else there, and not on the API', async () => {
    const url = await fleet.metricsUrl('host-1');
    expect((await fetch(url.replace('/metrics', '/'))).status).toBe(404);
    expect((await fetch(url, { method: 'POST' })).status).toBe(404);
    expect((await api('GET', '/metrics')).status).toBe(404);
    const s = await scrapeAll();
    // Labelled series appear with their first value; these have none.
    for (const name of ['flurry_nats_reconnects_total', 'process_cpu_user_seconds_total']) expect(has(s.gateway!, name), `gateway ${name}`).toBe(true);
    for (const h of HOSTS) {
      expect(total(s[h]!, 'flurry_memory_budget_bytes')).toBeGreaterThan(0);
      for (const name of ['flurry_guest_queue_depth', 'flurry_guest_running', 'flurry_nats_reconnects_total', 'process_cpu_user_seconds_total']) expect(has(s[h]!, name), `${h} ${name}`).toBe(true);
    }
  });

  it('calls - counted by function and outcome, with their latency; the first one is a cold start on a host', async () => {
    const before = await scrapeAll();
    for (let i = 0; i < 3; i++) expect(await (await api('POST', '/fn/logger', 'x')).text()).toBe('ok');
    const trapped = await api('POST', '/fn/trapper', 'x');
    const code = (await json<{ error: { code: string } }>(trapped, trapped.status)).error.code;
    expect(trapped.status).toBeGreaterThanOrEqual(500);
    const after = await scrapeAll();

    const moved = (name: string, labels: Record<string, string>) => total(after.gateway!, name, labels) - total(before.gateway!, name, labels);
    expect(moved('flurry_calls_total', { tenant: 'default', function: 'logger', outcome: 'ok' })).toBe(3);
    expect(moved('flurry_calls_total', { tenant: 'default', function: 'trapper', outcome: code })).toBe(1);
    expect(moved('flurry_call_duration_seconds_count', { tenant: 'default', function: 'logger' })).toBe(3);
    expect(moved('flurry_call_duration_seconds_bucket', { function: 'logger', le: '+Inf' })).toBe(3);
    expect(moved('flurry_call_duration_seconds_sum', { function: 'logger' })).toBeGreaterThan(0);
    // Each function was placed on one host for its first call.
    expect(onHosts(after, 'flurry_cold_start_seconds_count') - onHosts(before, 'flurry_cold_start_seconds_count')).toBe(2);
    expect(onHosts(after, 'flurry_memory_used_bytes', { kind: 'snapshot' })).toBeGreaterThan(0);
  });

  it('fork job - clone outcomes and the job duration move by the job; pages by source add up to the job record\'s; its trace reaches the hosts\' fork lines', async () => {
    const before = await scrapeAll();
    const traceId = 'a3ce929d0e0e47364bf92f3577b34da6';
    const submitted = await json<{ job: JobRecord }>(await api('POST', '/v1/jobs', { function: 'pattern', clones: 4, init: b64({ mib: 1 }), input: b64({ verify: 'all' }), reduce: false }, { traceparent: `00-${traceId}-00f067aa0ba902b7-01` }), 202);
    const job = await finishedJob(api, submitted.job.id, { timeoutMs: 30_000 });
    expect(job.state).toBe('done');
    // Each host that ran clones logged its fork request under the job's trace.
    for (const host of new Set(job.clonesDetail.map((c) => c.host!))) {
      await until(`${host}'s fork line with the job's trace id`, async () => lines.find((l) => l.service === host && l.line.msg === 'fork' && l.line.traceId === traceId), 10_000);
    }
    // Exact counts need one attempt per clone (a retried clone ran twice).
    expect(job.clonesDetail.map((c) => c.attempts)).toEqual([1, 1, 1, 1]);
    // The coordinator counts the job once its run has ended, moments after the record says done.
    const after = await until('the job counted on the gateway', async () => {
      const s = await scrapeAll();
      return total(s.gateway!, 'flurry_job_duration_seconds_count') > total(before.gateway!, 'flurry_job_duration_seconds_count') ? s : undefined;
    }, 10_000);

    const onGateway = (name: string, labels?: Record<string, string>) => total(after.gateway!, name, labels) - total(before.gateway!, name, labels);
    expect(onGateway('flurry_job_duration_seconds_count', { state: 'done', boot: 'fork' })).toBe(1);
    expect(onGateway('flurry_job_duration_seconds_sum')).toBeCloseTo((job.finishedAt! - job.createdAt) / 1000, 3);
    expect(onGateway('flurry_job_clones_total', { outcome: 'done' })).toBe(4);
    expect(onGateway('flurry_job_clones_total', { outcome: 'failed' })).toBe(0);

    const onHostsMoved = (name: string, labels?: Record<string, string>) => onHosts(after, name, labels) - onHosts(before, name, labels);
    expect(onHostsMoved('flurry_clones_total', { outcome: 'done' })).toBe(4);
    expect(onHostsMoved('flurry_fork_start_seconds_count')).toBe(4);
    expect(onHostsMoved('flurry_clone_fault_wait_seconds_count')).toBe(4);
    const sources: (keyof PageCounts)[] = ['local', 'multicast', 'unicast', 'zero'];
    const recorded = Object.fromEntries(sources.map((src) => [src, job.clonesDetail.reduce((sum, c) => sum + (c.pages?.[src] ?? 0), 0)]));
    const counted = Object.fromEntries(sources.map((src) => [src, onHostsMoved('flurry_clone_pages_total', { source: src })]));
    expect(counted).toEqual(recorded);
    // A 1 MiB pattern verified by every clone: its pages were touched.
    expect(recorded.local! + recorded.multicast! + recorded.unicast!).toBeGreaterThan(0);
  }, 40_000);

  it('service requests and migration - requests counted by service and outcome; the source host counts the rounds, pause, duration and pages the migration reported', async () => {
    const start = await scrapeAll();
    await json(await api('POST', '/v1/services', { name: 'room', function: 'room', min: 1, max: 1 }), 201);
    await json(await api('POST', '/svc/room/join', { name: 'ada' }), 200);
    await json(await api('POST', '/svc/room/say', { name: 'ada', text: 'x'.repeat(65536) }), 200);
    expect((await api('POST', '/svc/room/say', { text: 'nobody' })).status).toBe(400);
    const before = await scrapeAll();
    const requests = (labels: Record<string, string>) => total(before.gateway!, 'flurry_service_requests_total', labels) - total(start.gateway!, 'flurry_service_requests_total', labels);
    // The guest's own 400 is an answer: ok for the platform.
    expect(requests({ tenant: 'default', service: 'room', outcome: 'ok' })).toBe(3);
    expect(total(before.gateway!, 'flurry_service_request_duration_seconds_count', { service: 'room' })).toBe(3);
    const { instances } = (await json<{ service: { instances: { id: string; host: string }[] } }>(await api('GET', '/v1/services/room'))).service;
    expect(onHosts(before, 'flurry_memory_used_bytes', { kind: 'service_instance' })).toBeGreaterThan(0);
    const report = (await json<{ migration: { source: string; rounds: unknown[]; downtimeMs: number; totalMs: number; pagesSent: number } }>(
      await api('POST', `/v1/instances/${instances[0]!.id}/migrate`, {}),
    )).migration;
    const after = await scrapeAll();

    const source = report.source;
    expect(source).toBe(instances[0]!.host);
    const moved = (name: string, labels?: Record<string, string>) => total(after[source]!, name, labels) - total(before[source]!, name, labels);
    expect(moved('flurry_migrations_total', { outcome: 'committed' })).toBe(1);
    expect(moved('flurry_migration_rounds_count')).toBe(1);
    expect(moved('flurry_migration_rounds_sum')).toBe(report.rounds.length);
    expect(moved('flurry_migration_pause_seconds_sum')).toBeCloseTo(report.downtimeMs / 1000, 6);
    expect(moved('flurry_migration_duration_seconds_sum')).toBeCloseTo(report.totalMs / 1000, 6);
    expect(moved('flurry_migration_pages_total')).toBe(report.pagesSent);
    expect(report.pagesSent).toBeGreaterThan(0);
  });
});

describe('traceparent', () => {
  const linesOf = (traceId: string, service: string) => lines.filter((l) => l.service === service && l.line.traceId === traceId).map((l) => l.line);

  it('traceparent - a caller\'s trace id reaches the host\'s log line for the call and the gateway\'s; the answer carries the gateway\'s span', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const parent = '00f067aa0ba902b7';
    const res = await api('POST', '/fn/logger', 'x', { traceparent: `00-${traceId}-${parent}-01` });
    expect(await res.text()).toBe('ok');
    const back = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(res.headers.get('traceparent') ?? '');
    expect(back?.[1]).toBe(traceId);
    expect(back?.[2]).not.toBe(parent);
    const host = res.headers.get('x-flurry-host')!;
    const requestId = res.headers.get('x-flurry-request-id');
    const guest = await until('the host\'s guest line with the trace id', async () => linesOf(traceId, host).find((l) => l.guest === true), 10_000);
    expect(guest).toMatchObject({ msg: GUEST_LINE, requestId, fn: 'default/logger' });
    await until('the gateway\'s request line with the trace id', async () => linesOf(traceId, 'gateway').find((l) => l.msg === 'request' && l.requestId === requestId), 10_000);
  });

  it('traceparent - a malformed one is ignored: a new trace starts and reaches the host the same way', async () => {
    for (const bad of ['00-XYZ', `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`, `ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01`]) {
      const res = await api('POST', '/fn/logger', 'x', { traceparent: bad });
      expect(await res.text()).toBe('ok');
      const back = /^00-([0-9a-f]{32})-[0-9a-f]{16}-01$/.exec(res.headers.get('traceparent') ?? '');
      expect(back, bad).not.toBeNull();
      expect(bad).not.toContain(back![1]);
      await until(`the host's guest line of the new trace (${bad})`, async () => linesOf(back![1]!, res.headers.get('x-flurry-host')!).find((l) => l.guest === true), 10_000);
    }
  });
});

describe('reconnects', () => {
  it('nats restart - every process counts one reconnect', async () => {
    const before = await scrapeAll();
    await fleet.restartNats();
    await until('every process counted the reconnect', async () => {
      const s = await scrapeAll().catch(() => undefined);
      return s && Object.keys(s).every((n) => total(s[n]!, 'flurry_nats_reconnects_total') === total(before[n]!, 'flurry_nats_reconnects_total') + 1) ? s : undefined;
    }, 15_000);
  }, 20_000);
});
