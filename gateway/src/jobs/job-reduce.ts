/**
 * A job's reduce on one host: its clones' outputs, framed, go to the
 * snapshot's `reduce(count)` (docs/jobs.md, "Reduce"); the result comes back
 * to an inbox of the coordinator, not through a stream, so a broker outage
 * while it runs loses it and ends the wait (the job's next step reduces again),
 * as does the host's going away (host-held-work.ts): its own broker connection
 * lost (its node of a cluster, and the result with it), a restart, silence.
 * Input and output go in the messages whenever they fit (reduceForkRequest).
 */
import { FlurryError, maxPayload, requestFork, ResultInbox, traceHeaders, type BrokerLink, type KeptRun } from '@flurry/core';
import type { NatsConnection } from '@nats-io/transport-node';
import { reduceForkRequest, reduceInputObject, START_GRACE_MS, type JobForkFacts } from './job-forks.js';
import type { JobStore } from './job-store.js';
import type { FleetView } from '../fleet-view.js';
import { whileHostLive } from '../host-held-work.js';

export interface ReduceDeps {
  nc: NatsConnection;
  store: JobStore;
  link: BrokerLink;
  fleet: FleetView;
}

/**
 * Runs the reduce on `host` with `framed` (and the runs of task outputs `kept` there, ForkRequest.keptOutputs)
 * and returns its output; throws the host's or the guest's error (`not_found`: a kept run is not there),
 * `timeout`, `unavailable` (an outage), or HostAway (the host went away while it held the reduce).
 */
export async function reduceOn(deps: ReduceDeps, job: JobForkFacts, host: string, framed: Uint8Array, kept: KeptRun[] = []): Promise<Uint8Array> {
  const { record, spec } = job;
  const waitMs = spec.timeoutMs + START_GRACE_MS;
  const inbox = await ResultInbox.open(deps.nc, 'reduce', 1);
  try {
    const { request, large } = reduceForkRequest(job, inbox.subject, framed, maxPayload(deps.nc), kept);
    if (large) await deps.store.putBlob(reduceInputObject(record), framed);
    // One watch over the request and the result: the host's records are read once, before it holds anything.
    const asked = async () => {
      await requestFork(deps.nc, host, request, { timeoutMs: waitMs, link: deps.link, headers: traceHeaders(job.trace) });
      return inbox.all(waitMs, deps.link);
    };
    const results = await whileHostLive(deps.fleet, host, asked(), `the reduce of job ${record.id}`).catch((err: unknown) => {
      throw err instanceof FlurryError && err.code === 'timeout' ? new FlurryError('timeout', `reduce did not finish within ${spec.timeoutMs} ms`) : err;
    });
    const r = results[0]!;
    if (!r.ok) throw FlurryError.fromWire(r.error ?? { code: 'internal', message: 'reduce failed' });
    if (r.outputObject) return deps.store.objectOutput(record.tenant, record.id, r.outputObject);
    return r.output ?? new Uint8Array(0);
  } finally {
    inbox.close();
  }
}
