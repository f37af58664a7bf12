/**
 * Sending a job's pending clones to hosts: round by round, one clone per
 * host with a free slot, hosts caching the snapshot's pages first
 * (planning/job-hosts.ts), each host's batch one fork request. A host whose
 * request fails rests for HOST_BACKOFF_MS and its clones are lost to the
 * platform (forked again elsewhere).
 */
import { requestFork, traceHeaders, type BrokerLink, type HostRecord, type JobEventKind, type Logger } from '@flurry/core';
import type { NatsConnection } from '@nats-io/transport-node';
import type { FleetView } from '../fleet-view.js';
import { spreadClones } from '../planning/job-hosts.js';
import type { CloneAttempts } from './clone-attempts.js';
import { attemptRequestId, cloneForkRequest, START_GRACE_MS, type JobForkFacts } from './job-forks.js';
import type { JobSnapshot } from './job-snapshot.js';

/** How long a host whose fork request failed gets no new clones. */
const HOST_BACKOFF_MS = 3000;

export interface DispatchDeps {
  nc: NatsConnection;
  link: BrokerLink;
  log: Logger;
  fleet: FleetView;
  /** Hosts whose last fork request failed, and until when to skip them (shared by the coordinator's runs). */
  hostBackoff: Map<string, number>;
}

/** What dispatching needs of the job's run. */
export interface DispatchOwner {
  over(): boolean;
  emit(kind: JobEventKind, fields: Record<string, unknown>): void;
  changed(): void;
  wake(): void;
}

export class CloneDispatch {
  private seq = 0;

  constructor(
    private readonly job: DispatchOwner,
    private readonly attempts: CloneAttempts,
    private readonly snapshot: JobSnapshot,
    private readonly deps: DispatchDeps,
  ) {}

  /** Sends the pending clones of `facts.record` to `usable` hosts with free slots. */
  dispatch(facts: JobForkFacts, usable: HostRecord[], freeSlots: (h: HostRecord) => number): void {
    const now = Date.now();
    const pending = facts.record.clonesDetail.filter((c) => c.state === 'pending' && this.attempts.ready(c.index, now)).map((c) => c.index);
    if (pending.length === 0) return;
    for (const [host, indices] of spreadClones(pending, usable, this.snapshot.hasPages, freeSlots)) this.fork(facts, host, indices);
  }

  private fork(facts: JobForkFacts, host: string, indices: number[]): void {
    const { record, spec } = facts;
    const requestId = attemptRequestId(record.id, ++this.seq);
    const deadline = Date.now() + spec.timeoutMs + START_GRACE_MS;
    const incarnation = this.deps.fleet.incarnation(host);
    for (const index of indices) {
      const c = record.clonesDetail[index];
      c.state = 'running';
      c.host = host;
      c.attempts++;
      this.attempts.start(index, { host, incarnation, requestId, deadline, sentAt: Date.now() });
    }
    this.snapshot.sentTo(host);
    this.job.changed();
    const t0 = performance.now();
    // A broker outage before the host's answer leaves it unknown whether the host has the clones: they
    // are forked again (the first result per index is kept) rather than waited for until their deadline.
    const { nc, link } = this.deps;
    const request = cloneForkRequest(facts, host, requestId, indices);
    // Its host keeps the outputs for the reduce there: the reduce request names them instead of sending them.
    if (request.tasks?.keepOutputs) this.attempts.tasks?.outputsKeptOn(requestId, host);
    requestFork(nc, host, request, { timeoutMs: spec.timeoutMs + START_GRACE_MS, link, headers: traceHeaders(facts.trace) }).then(
      (started) => this.job.emit('forked', { host, indices, runningMs: Math.round(performance.now() - t0), pager: started.pager }),
      (err: Error) => this.forkFailed(record.id, host, requestId, indices, err.message, !link.connected),
    );
  }

  /** `outage`: the broker, not the host, failed the request: the host is not rested. */
  private forkFailed(jobId: string, host: string, requestId: string, indices: number[], message: string, outage: boolean): void {
    if (this.job.over()) return;
    this.deps.log.warn({ jobId, hostId: host, requestId, err: message }, 'fork request failed');
    if (!outage) this.deps.hostBackoff.set(host, Date.now() + HOST_BACKOFF_MS);
    for (const index of indices) {
      const r = this.attempts.current(index);
      if (r?.requestId === requestId) this.attempts.lose(index, r, `fork on ${host} failed: ${message}`);
    }
    this.job.wake();
  }
}
