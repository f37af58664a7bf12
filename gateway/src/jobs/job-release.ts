/**
 * A job lets go of its snapshot when it ends: its clones are stopped (when
 * asked) on every host that may run them, and the snapshot is released. A
 * kept parent is only released by this job as one of its holders (it stays
 * for later jobs, and the clone hosts keep its pages until its host frees
 * it); otherwise the parent and every host's pages of it are dropped.
 * Failures are logged, never thrown: a host that does not answer drops the
 * snapshot when it restarts, or its idle timer frees it.
 */
import { requestCancel, requestRelease, type Logger } from '@flurry/core';
import type { NatsConnection } from '@nats-io/transport-node';

export interface JobSnapshotHolder {
  tenant: string;
  jobId: string;
  snapshotId: string;
  /** The parent's host, when it is live. */
  parent?: string;
  /** Live hosts that have (or had) clones of the snapshot, and so its pages. */
  hostsWithPages: string[];
  keepParent: boolean;
}

export async function releaseJobSnapshot(nc: NatsConnection, log: Logger, job: JobSnapshotHolder, stopClones: boolean): Promise<void> {
  const hosts = [...new Set([...job.hostsWithPages, ...(job.parent ? [job.parent] : [])])];
  if (!job.keepParent) {
    await releaseOn(nc, log, job, hosts, stopClones);
    return;
  }
  if (stopClones) await cancelOn(nc, log, job, hosts);
  if (job.parent) await releaseOn(nc, log, job, [job.parent], false);
}

/** Stops this job's clones of the snapshot on `hosts` (other jobs sharing a kept parent go on). */
export async function cancelOn(nc: NatsConnection, log: Logger, job: Pick<JobSnapshotHolder, 'tenant' | 'jobId' | 'snapshotId'>, hosts: string[]): Promise<void> {
  const { tenant, jobId, snapshotId } = job;
  await Promise.all(hosts.map(async (h) => {
    try {
      await requestCancel(nc, h, { tenant, snapshotId, jobId });
    } catch (err) {
      log.warn({ jobId, hostId: h, snapshotId, err: (err as Error).message }, 'cancel failed');
    }
  }));
}

/** Releases the snapshot on `hosts` as this job (a kept parent stays for its other holders), stopping the job's clones first when asked. */
export async function releaseOn(nc: NatsConnection, log: Logger, job: Pick<JobSnapshotHolder, 'tenant' | 'jobId' | 'snapshotId'>, hosts: string[], stopClones: boolean): Promise<void> {
  const { tenant, jobId, snapshotId } = job;
  if (stopClones) await cancelOn(nc, log, job, hosts);
  await Promise.all(hosts.map(async (h) => {
    try {
      await requestRelease(nc, h, { tenant, snapshotId, holder: jobId });
    } catch (err) {
      log.warn({ jobId, hostId: h, snapshotId, err: (err as Error).message }, 'release failed');
    }
  }));
}
