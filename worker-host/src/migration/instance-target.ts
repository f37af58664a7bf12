/**
 * The pre-copy driver's target in this process: an empty instance of a warm
 * key in a guest pool, made at the first pages, written round by round, and
 * serving once the last pages and globals are in.
 */
import { FlurryError } from '@flurry/core';
import type { GlobalValue } from '../guest/instance.js';
import type { GuestPool, MigrationRound } from '../guest/guest-pool.js';
import { snapshotDigest } from './parent-digest.js';
import type { CommitTiming, PrecopyTarget } from './precopy.js';

export class InstanceTarget implements PrecopyTarget {
  /** The received instance's id in the target pool, once the first pages came. */
  instanceId: string | undefined;
  /** With `verify`: the received instance's memory once committed, before it served. */
  memoryHash: string | undefined;

  constructor(
    private readonly pool: GuestPool,
    /** The warm (or adopted) key whose module the instance runs. */
    private readonly key: string,
    private readonly opts: { verify?: boolean } = {},
  ) {}

  private async received(memoryBytes: number, fromParent = false): Promise<string> {
    this.instanceId ??= await this.pool.receiveInstance(this.key, { memoryBytes, fromParent });
    return this.instanceId;
  }

  /** Starts from the key's snapshot when it is the source's parent, byte for byte (same digest). */
  async prepare(memoryBytes: number, parentDigest: string | undefined): Promise<{ fromParent: boolean }> {
    const fromParent = parentDigest !== undefined && parentDigest === (await snapshotDigest(this.pool.snapshotImage(this.key)).catch(() => undefined));
    await this.received(memoryBytes, fromParent);
    return { fromParent };
  }

  async apply(pages: Uint32Array, bytes: Uint8Array, memoryBytes: number): Promise<void> {
    await this.pool.applyPages(await this.received(memoryBytes), pages, bytes, memoryBytes);
  }

  async settle(): Promise<void> {
    if (this.instanceId) await this.pool.settleReceive(this.instanceId);
  }

  async commit(last: MigrationRound, globals: Record<string, GlobalValue>, pagesSent: number, onSent?: () => void): Promise<CommitTiming> {
    const started = performance.now();
    onSent?.();
    const id = await this.received(last.memoryBytes);
    const { pagesApplied, finished } = await this.pool.finishReceive(id, globals, last);
    if (pagesApplied !== pagesSent) {
      this.abort();
      throw new FlurryError('internal', `the commit is refused: ${pagesApplied} pages were written into the instance, the source sent ${pagesSent}`);
    }
    // In one process nothing is gained by answering before the step ran; its failure is the commit's.
    await finished;
    const applyMs = performance.now() - started;
    if (this.opts.verify) this.memoryHash = (await this.pool.instanceMemoryHash(id)).hash;
    return { sendMs: 0, targetApplyMs: applyMs, targetCommitMs: performance.now() - started, pagesApplied };
  }

  /** Drops what was received. */
  abort(): void {
    if (this.instanceId) this.pool.destroyInstance(this.instanceId);
    this.instanceId = undefined;
  }
}
