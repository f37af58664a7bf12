/**
 * The pre-copy driver's source: an instance of a guest pool on this host,
 * read round by round while it serves, stopped for the last pages, then let
 * go (its held requests handed on: `onCommitSent`, `onCommit`) or resumed.
 */
import type { GuestPool, HeldRequest, MigrationFinal, MigrationMode, MigrationRound } from '../guest/guest-pool.js';
import { snapshotDigest } from './parent-digest.js';
import type { PrecopySource } from './precopy.js';

export interface InstanceSourceOptions {
  /** Dirty tracking to try, the first the pool can do (default: native tracking where the pager can, else comparing pages). */
  modes?: readonly MigrationMode[];
  /** Hash the instance's memory once stopped (memoryAtStop), to compare with the target's. */
  verify?: boolean;
  /**
   * The commit is on its way: the requests held so far, in arrival order, still held, to hand to the target
   * (which runs them only if the commit takes effect; if it does not, the source runs them on its abort).
   */
  onCommitSent?: (held: HeldRequest[]) => void;
  /**
   * The instance is let go: every request it held since the stop, in arrival order, to settle (those not handed
   * to the target yet go now). Resolves when the source's copy may be destroyed.
   */
  onCommit?: (held: HeldRequest[]) => Promise<unknown> | void;
  /** Once the pause is over (the held requests forwarded): frees what the source kept for the instance. */
  onRelease?: () => void;
  /** Before each slice of a round: how long to wait for the instance's own requests (PrecopySource.waitBeforeSlice). */
  waitBeforeSlice?: (round: number, lastBytes: number) => number;
}

const ALL_MODES: readonly MigrationMode[] = ['async', 'sync', 'compare'];

export class InstanceSource implements PrecopySource {
  /** With `verify`: the instance's memory at the stop, which the target must hold once committed. */
  memoryAtStop: { hash: string; memoryBytes: number } | undefined;
  /** Round 0 and the stop send only what differs from the parent. */
  private diff = false;
  /** Once let go: when the stopped copy may be destroyed. */
  private letGo: Promise<unknown> | undefined;
  /** A sent slice's buffer, handed back to the instance's thread for the next read (so no read leaves garbage). */
  private spare: ArrayBuffer | undefined;

  private constructor(
    private readonly pool: GuestPool,
    readonly instanceId: string,
    /** The dirty tracking in use. */
    readonly mode: MigrationMode,
    private readonly opts: InstanceSourceOptions,
    /** The instance can tell the pages it wrote since its fork; its memory when tracking began. */
    private readonly tracked: { fromParent: boolean; memoryBytes: number },
  ) {}

  /** Starts dirty tracking of the instance (it goes on serving) with the first of `opts.modes` the pool can do. */
  static async begin(pool: GuestPool, instanceId: string, opts: InstanceSourceOptions = {}): Promise<InstanceSource> {
    const modes = opts.modes ?? ALL_MODES;
    for (const [i, mode] of modes.entries()) {
      try {
        const tracked = await pool.beginMigration(instanceId, { mode });
        return new InstanceSource(pool, instanceId, mode, opts, tracked);
      } catch (err) {
        if (i === modes.length - 1) throw err;
      }
    }
    throw new RangeError('no dirty tracking mode to try');
  }

  async parent(): Promise<{ digest?: string; memoryBytes: number }> {
    const { memoryBytes } = this.tracked;
    const key = this.tracked.fromParent ? this.pool.instances().find((i) => i.instanceId === this.instanceId)?.key : undefined;
    if (key === undefined) return { memoryBytes };
    try {
      return { digest: await snapshotDigest(this.pool.snapshotImage(key)), memoryBytes };
    } catch {
      // Its parent cannot be read here (released, or a snapshot of another host's): every page is sent.
      return { memoryBytes };
    }
  }

  fromParent(): void {
    this.diff = true;
  }

  waitBeforeSlice(round: number, lastBytes: number): number {
    return this.opts.waitBeforeSlice?.(round, lastBytes) ?? 0;
  }

  round(): Promise<MigrationRound> {
    return this.pool.migrationRound(this.instanceId, { fromParent: this.diff, reuse: this.takeSpare() });
  }

  recycle(sent: MigrationRound): void {
    const { buffer } = sent.bytes;
    if (buffer instanceof ArrayBuffer && buffer.byteLength > 0) this.spare = buffer;
  }

  private takeSpare(): ArrayBuffer | undefined {
    const spare = this.spare;
    this.spare = undefined;
    return spare;
  }

  async stopAndCopy(): Promise<MigrationFinal> {
    const last = await this.pool.stopAndCopy(this.instanceId, { fromParent: this.diff, reuse: this.takeSpare() });
    // Stopped: the memory is what the target will hold once it has the last pages.
    if (this.opts.verify) this.memoryAtStop = await this.pool.instanceMemoryHash(this.instanceId);
    return last;
  }

  committing(): void {
    this.opts.onCommitSent?.(this.pool.heldRequests(this.instanceId));
  }

  commit(): void {
    const held = this.pool.commitMigration(this.instanceId);
    this.letGo = this.opts.onCommit?.(held) ?? undefined;
  }

  /**
   * Destroys the stopped copy once `onCommit` says (after its requests went to the target): destroying may stop
   * its thread and start a spare one, which should not take the CPU from the target while it serves them.
   */
  release(): void {
    this.opts.onRelease?.();
    void Promise.resolve(this.letGo)
      .catch(() => undefined)
      .then(() => this.pool.destroyInstance(this.instanceId));
  }

  abort(): Promise<void> {
    return this.pool.abortMigration(this.instanceId);
  }
}
