/**
 * The fork requests whose clones are on this host now: which job and snapshot
 * each belongs to, the pool keys its clones run under and their call ids.
 * A cancel stops the clones of the requests that named its job (ForkRequest.jobId),
 * or of every request of the snapshot.
 */

/** A clone's call id in the guest pool (and its logs). */
export function cloneCallId(requestId: string, index: number): string {
  return `${requestId}.${index}`;
}

/** One fork request in flight here. */
export interface RunningFork {
  readonly requestId: string;
  readonly jobId?: string;
  readonly snapshotId: string;
  /** Call ids of its clones. */
  readonly callIds: ReadonlySet<string>;
  /** Pool keys its clones run under (the shared snapshot's, and the own boots' while they run). */
  readonly keys: Set<string>;
}

export class RunningForks {
  private readonly forks = new Set<RunningFork>();

  /** Notes a fork request from its receipt until `remove` (its last clone ended). */
  add(requestId: string, jobId: string | undefined, snapshotId: string, indices: number[]): RunningFork {
    const fork: RunningFork = { requestId, jobId, snapshotId, callIds: new Set(indices.map((i) => cloneCallId(requestId, i))), keys: new Set() };
    this.forks.add(fork);
    return fork;
  }

  remove(fork: RunningFork): void {
    this.forks.delete(fork);
  }

  /** The fork requests of a snapshot, or only those of one job. */
  of(snapshotId: string, jobId?: string): RunningFork[] {
    return [...this.forks].filter((f) => f.snapshotId === snapshotId && (jobId === undefined || f.jobId === jobId));
  }
}
