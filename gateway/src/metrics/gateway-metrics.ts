/**
 * The gateway's Prometheus metrics (docs/observability.md), in a registry of
 * this gateway's own: function calls and service requests as the gateway
 * saw them (by tenant, function or service and outcome, and their latency),
 * jobs that ended (duration, clone outcomes) and the broker connection's
 * reconnects. Served on the metrics
 * listener (core/src/metrics-listener.ts), never on the API's port.
 *
 * Labels stay bounded: tenants and their deployed functions, error codes,
 * job states; never a request or job id.
 */
import { countReconnects, FlurryError, type BrokerLink, type ErrorCode, type JobRecord } from '@flurry/core';
import { Counter, Histogram, Registry } from 'prom-client';

/** A call's or service request's outcome: `ok` (the guest answered, whatever its HTTP status) or the platform's error code. */
export type CallOutcome = 'ok' | ErrorCode;

/**
 * Runs `work`, then tells `record` its outcome (`ok`, the FlurryError's code, or `internal`)
 * and the seconds it took; `work`'s answer or error goes on unchanged. `record` runs after
 * the answer has been written (setImmediate): counting a call is no part of its latency.
 */
export async function withOutcome<T>(work: () => Promise<T>, record: (outcome: CallOutcome, seconds: number) => void): Promise<T> {
  const began = performance.now();
  let outcome: CallOutcome = 'internal';
  try {
    const result = await work();
    outcome = 'ok';
    return result;
  } catch (err) {
    if (err instanceof FlurryError) outcome = err.code;
    throw err;
  } finally {
    setImmediate(record, outcome, (performance.now() - began) / 1000);
  }
}

/** Seconds: from a cached clone's sub-millisecond call to a placement's seconds. */
const CALL_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Seconds: jobs run from a fraction of a second to hours. */
const JOB_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly calls = new Counter({
    name: 'flurry_calls_total', help: 'Function calls answered by the gateway, by outcome (ok: the function answered)',
    labelNames: ['tenant', 'function', 'outcome'] as const, registers: [this.registry],
  });
  private readonly callSeconds = new Histogram({
    name: 'flurry_call_duration_seconds', help: 'Time from the gateway sending a function call to its answer, placement included',
    labelNames: ['tenant', 'function'] as const, buckets: CALL_BUCKETS, registers: [this.registry],
  });
  private readonly serviceRequests = new Counter({
    name: 'flurry_service_requests_total', help: 'Requests to service instances answered by the gateway, by outcome (ok: the instance answered)',
    labelNames: ['tenant', 'service', 'outcome'] as const, registers: [this.registry],
  });
  private readonly serviceSeconds = new Histogram({
    name: 'flurry_service_request_duration_seconds', help: 'Time from the gateway routing a service request to its answer, waits for a first instance and resends included',
    labelNames: ['tenant', 'service'] as const, buckets: CALL_BUCKETS, registers: [this.registry],
  });
  private readonly jobSeconds = new Histogram({
    name: 'flurry_job_duration_seconds', help: 'Jobs that ended, from submission to the end, by final state and boot mode',
    labelNames: ['state', 'boot'] as const, buckets: JOB_BUCKETS, registers: [this.registry],
  });
  private readonly clones = new Counter({
    name: 'flurry_job_clones_total', help: 'Clones of ended jobs by outcome (done, failed, or not run: the job was cancelled or failed first)',
    labelNames: ['outcome'] as const, registers: [this.registry],
  });
  private readonly tasks = new Counter({
    name: 'flurry_job_tasks_total', help: 'Tasks of ended task jobs: done, backup (duplicates handed out), duplicate (results dropped: another came first), failed (run_task failures)',
    labelNames: ['outcome'] as const, registers: [this.registry],
  });

  constructor(link: BrokerLink) {
    countReconnects(this.registry, link);
  }

  /** One function call answered (`seconds` since it was sent). */
  call(tenant: string, fn: string, outcome: CallOutcome, seconds: number): void {
    this.calls.inc({ tenant, function: fn, outcome });
    this.callSeconds.observe({ tenant, function: fn }, seconds);
  }

  /** One service request answered (`seconds` since it was routed). */
  serviceRequest(tenant: string, service: string, outcome: CallOutcome, seconds: number): void {
    this.serviceRequests.inc({ tenant, service, outcome });
    this.serviceSeconds.observe({ tenant, service }, seconds);
  }

  /** A job reached its final state (the coordinator that drove it to the end reports it, once). */
  jobEnded(record: JobRecord): void {
    const ended = record.finishedAt ?? Date.now();
    this.jobSeconds.observe({ state: record.state, boot: record.boot ?? 'fork' }, Math.max(0, ended - record.createdAt) / 1000);
    const { done, failed } = record.counts;
    this.clones.inc({ outcome: 'done' }, done);
    this.clones.inc({ outcome: 'failed' }, failed);
    this.clones.inc({ outcome: 'not_run' }, Math.max(0, record.clones - done - failed));
    const t = record.tasks;
    if (!t) return;
    this.tasks.inc({ outcome: 'done' }, t.done);
    this.tasks.inc({ outcome: 'backup' }, t.backups);
    this.tasks.inc({ outcome: 'duplicate' }, t.duplicates);
    this.tasks.inc({ outcome: 'failed' }, t.failures);
  }
}
