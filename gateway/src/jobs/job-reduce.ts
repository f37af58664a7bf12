/**
 * A job's reduce on one host: its clones' outputs, framed, go to the
 * snapshot's `reduce(count)` (docs/jobs.md, "Reduce"); the result comes back
 * to an inbox of the coordinator, not through a stream, so a broker outage
 * while it runs loses it and ends the wait (the job's next step reduces again).
 * The input goes in the message whenever it fits (reduceForkRequest); the
 * output is stored by the host, and the result names that object.
 */
import { FlurryError, maxPayload, requestFork, ResultInbox, traceHeaders, type BrokerLink } from '@flurry/core';
import type { NatsConnection } from '@nats-io/transport-node';
import { reduceForkRequest, reduceInputObject, reduceOutputPrefix, START_GRACE_MS, type JobForkFacts } from './job-forks.js';
import type { JobStore } from './job-store.js';

export interface ReduceDeps {
  nc: NatsConnection;
  store: JobStore;
  link: BrokerLink;
}

/** What a reduce gave: the object its host stored the output in (in JobOutputObjects) and its size, or, with no object, the output itself. */
export type Reduced = { object: string; bytes: number } | { output: Uint8Array };

/** Runs the reduce on `host`; throws the host's or the guest's error, `timeout`, or `unavailable` (an outage). */
export async function reduceOn(deps: ReduceDeps, job: JobForkFacts, host: string, framed: Uint8Array): Promise<Reduced> {
  const { record, spec } = job;
  const waitMs = spec.timeoutMs + START_GRACE_MS;
  const inbox = await ResultInbox.open(deps.nc, 'reduce', 1);
  try {
    const { request, large } = reduceForkRequest(job, inbox.subject, framed, maxPayload(deps.nc));
    if (large) await deps.store.putBlob(reduceInputObject(record), framed);
    await requestFork(deps.nc, host, request, { timeoutMs: waitMs, headers: traceHeaders(job.trace) });
    const results = await inbox.all(waitMs, deps.link).catch((err: unknown) => {
      throw err instanceof FlurryError && err.code === 'timeout' ? new FlurryError('timeout', `reduce did not finish within ${spec.timeoutMs} ms`) : err;
    });
    const r = results[0]!;
    if (!r.ok) throw FlurryError.fromWire(r.error ?? { code: 'internal', message: 'reduce failed' });
    if (!r.outputObject) return { output: r.output ?? new Uint8Array(0) };
    // The job's result is this object: it must be the one this request's host was asked to write.
    const expected = `${reduceOutputPrefix(record)}/0/${request.requestId}`;
    if (r.outputObject !== expected) throw new FlurryError('internal', `the reduce's result names the output object ${r.outputObject}, not ${expected}`);
    return { object: r.outputObject, bytes: r.outputBytes ?? (await deps.store.outputSize(r.outputObject)) };
  } finally {
    inbox.close();
  }
}
