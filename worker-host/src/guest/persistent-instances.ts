/**
 * Persistent (service) instances: clones of a warm parent that keep their
 * memory between requests, placed on their tenant's instance threads, with
 * the requests held while one stops for a migration. An instance dies with
 * its thread (a request past its time limit ends the thread).
 */
import { FlurryError, type InvokeLimits, type Logger } from '@flurry/core';
import type { MemoryBudget } from '../memory-budget.js';
import type { CallResult, GuestLimits, HttpRequestData } from './call-types.js';
import type { MigrationOp, MigrationOpResult } from './migration-ops.js';
import type { SnapshotTable } from './snapshot-table.js';
import type { InstanceThread } from './thread-jobs.js';
import { ownCopy } from './thread-messages.js';
import type { ThreadScheduler } from './thread-scheduler.js';

/** A persistent (service) instance: a clone of a warm parent that keeps its memory between requests. */
export interface InstanceInfo {
  instanceId: string;
  key: string;
  createdAt: number;
  /** Requests answered or failed so far. */
  requests: number;
  /** While it migrates away ('source': pre-copy, or 'stopped' for stop-and-copy) or is being received ('target'). */
  migrating?: 'source' | 'stopped' | 'target';
}

/**
 * A request that reached a migrating instance after stop-and-copy: held, then
 * handed back by commitMigration (forward it to the target and settle it with
 * `forward`) or run on the source again by abortMigration.
 */
export interface HeldRequest {
  request: HttpRequestData;
  callId: string;
  /** Its function's own limits (InvokeRequest.limits), wherever it runs. */
  limits?: InvokeLimits;
  /** Settles the caller's instanceHandle promise with the answer from wherever the request was forwarded to. */
  forward(answer: Promise<CallResult>): void;
}

export interface PoolInstance extends InstanceInfo {
  thread: InstanceThread;
  /** Its linear memory's size, as of its last request (what it holds of the host's memory budget). */
  memoryBytes: number;
  /**
   * Set while it migrates away (source) or is being received (target: `applied` pages queued to be written into
   * it so far, `writing` those writes not done yet; `finishing`: its last step is queued, the commit taken, and
   * its requests are held until that step ran).
   */
  migration?: { role: 'source' | 'target'; stopped: boolean; held: HeldRequest[]; applied: number; writing?: Set<Promise<unknown>>; finishing?: boolean };
}

function instanceHolding(instanceId: string): string {
  return `instance:${instanceId}`;
}

export class PersistentInstances {
  private readonly live = new Map<string, PoolInstance>();
  private nextInstance = 1;
  private readonly goneListeners: ((instanceId: string, reason: string) => void)[] = [];

  constructor(
    private readonly scheduler: ThreadScheduler,
    private readonly snapshots: SnapshotTable,
    private readonly limits: GuestLimits,
    private readonly budget: MemoryBudget | undefined,
    private readonly log: Logger,
  ) {}

  /**
   * An instance thread and an id for a new instance of a warm or adopted key,
   * claimed for it until `settleClaim`: one of the key's tenant's threads with
   * room, or a new one, which is sent the key's snapshot if it does not hold it yet.
   */
  place(key: string): { thread: InstanceThread; instanceId: string } {
    if (this.scheduler.closing) throw new FlurryError('unavailable', 'the guest pool is closing');
    const held = this.snapshots.get(key);
    if (!held) throw new FlurryError('not_found', `${key} is not warm on this host`);
    const thread = this.scheduler.claimInstanceThread(this.snapshots.tenantOf(key));
    this.snapshots.loadOnce(thread, held);
    return { thread, instanceId: `${key}#${this.nextInstance++}` };
  }

  /** See GuestPool.createInstance. */
  async create(key: string, callId?: string): Promise<string> {
    const memoryBytes = this.snapshots.get(key)?.snapshot.memory.byteLength ?? 0;
    const admitted = this.budget?.admit(memoryBytes, `an instance of ${key}`);
    let placed: ReturnType<PersistentInstances['place']> | undefined;
    let made = false;
    try {
      placed = this.place(key);
      const { thread, instanceId } = placed;
      const answer = await this.scheduler.submitTo(thread, {
        message: { type: 'instance-create', id: this.scheduler.messageId(), key, instanceId },
        transfer: [],
        // A tenant's first instance on a thread loads the parent into it (module and snapshot) before on_restore:
        // start-up work, so it gets the init limit; a creation that times out ends the thread with its instances.
        timeoutMs: Math.max(this.limits.callTimeoutMs, this.limits.initTimeoutMs),
        what: 'instance creation',
        key,
        callId,
        instanceId,
      });
      if (answer.type !== 'created') throw new FlurryError('internal', `unexpected answer ${answer.type} to an instance creation`);
      if (thread.retired || this.scheduler.closing) throw new FlurryError('unavailable', `instance ${instanceId} was lost with its thread`);
      this.track({ instanceId, key, createdAt: Date.now(), requests: 0, thread, memoryBytes });
      made = true;
      return instanceId;
    } finally {
      if (placed) this.settleClaim(placed.thread, placed.instanceId, made);
      admitted?.done();
    }
  }

  get closing(): boolean {
    return this.scheduler.closing;
  }

  /** An instance placed on `thread` was made (`made`) or failed: its claim ends. */
  settleClaim(thread: InstanceThread, instanceId: string, made: boolean): void {
    this.scheduler.settleClaim(thread, instanceId, made);
  }

  /** Counts a new live instance (made here or received) against the memory budget. */
  track(inst: PoolInstance): void {
    this.live.set(inst.instanceId, inst);
    this.budget?.track(instanceHolding(inst.instanceId), { kind: 'service instance', bytes: () => inst.memoryBytes });
  }

  /** See GuestPool.instanceHandle. */
  async handle(instanceId: string, request: HttpRequestData, callId: string, limits?: InvokeLimits): Promise<CallResult> {
    if (this.scheduler.closing) throw new FlurryError('unavailable', 'the guest pool is closing');
    const inst = this.live.get(instanceId);
    if (!inst) throw new FlurryError('not_found', `instance ${instanceId} does not exist`);
    if (inst.migration?.role === 'target' && !inst.migration.finishing) throw new FlurryError('unavailable', `instance ${instanceId} is still being received`);
    return new Promise<CallResult>((resolve, reject) => {
      // Stopped for stop-and-copy: held until the migration commits (forwarded) or aborts (run here). Received and
      // finishing: held until its last step ran (then run here) or failed.
      const held: HeldRequest = { request, callId, limits, forward: (answer) => answer.then(resolve, reject) };
      if (inst.migration?.stopped || inst.migration?.finishing) return inst.migration.held.push(held);
      const { body, method, path, query, headers } = request;
      const own = ownCopy(body);
      this.scheduler.submitTo(inst.thread, {
        message: {
          type: 'instance-call', id: this.scheduler.messageId(), instanceId, input: own, request: { method, path, query, headers },
          ...(limits?.outputBytes !== undefined && { maxOutputBytes: Math.min(limits.outputBytes, this.limits.maxOutputBytes) }),
        },
        transfer: [own.buffer],
        timeoutMs: limits?.timeoutMs ?? this.limits.callTimeoutMs,
        what: 'call',
        key: inst.key,
        callId,
        instanceId,
        // Still queued when the instance stops for stop-and-copy: held like the requests arriving after.
        hold: () => inst.migration?.held.push(held),
      })
        .then(
          (answer) => {
            inst.requests++;
            if (answer.type !== 'result') return reject(new FlurryError('internal', `unexpected answer ${answer.type} to an instance call`));
            if (answer.memoryBytes !== undefined) inst.memoryBytes = answer.memoryBytes;
            const { status, headers: h, body: b, logs, droppedLogLines, durationMs, startMs, memory } = answer;
            resolve({ status, headers: h, body: b, logs, droppedLogLines, durationMs, startMs, memory });
          },
          (err: unknown) => {
            inst.requests++;
            reject(err);
          },
        );
    });
  }

  /** Ends a persistent instance; requests queued for it fail with not_found. Unknown ids are ignored. */
  destroy(instanceId: string): void {
    const inst = this.live.get(instanceId);
    if (!inst) return;
    this.live.delete(instanceId);
    this.budget?.untrack(instanceHolding(instanceId));
    for (const h of inst.migration?.held.splice(0) ?? []) h.forward(Promise.reject(new FlurryError('not_found', `instance ${instanceId} was destroyed`)));
    this.scheduler.instanceLeft(inst.thread, instanceId);
  }

  /** Destroys every instance of a key (its snapshot is going: a lazy one is registered with the snapshot's page store). */
  destroyAllOf(key: string): void {
    for (const inst of [...this.live.values()]) if (inst.key === key) this.destroy(inst.instanceId);
  }

  /** The persistent instances alive in this pool. */
  list(): InstanceInfo[] {
    return [...this.live.values()].map(({ instanceId, key, createdAt, requests, migration }) => ({
      instanceId,
      key,
      createdAt,
      requests,
      // Finishing: committed here, it takes requests (they wait for its last step).
      ...(migration && !migration.finishing ? { migrating: migration.role === 'target' ? ('target' as const) : migration.stopped ? ('stopped' as const) : ('source' as const) } : {}),
    }));
  }

  /** Tells `listener` of every persistent instance destroyed with its thread (not those destroyed on request). */
  onGone(listener: (instanceId: string, reason: string) => void): void {
    this.goneListeners.push(listener);
  }

  /** Forgets the instances of a thread that is gone, failing their held requests with an error naming each. */
  lostWith(thread: InstanceThread, reason: string): void {
    for (const id of thread.holding.instances) {
      for (const h of this.live.get(id)?.migration?.held.splice(0) ?? []) h.forward(Promise.reject(new FlurryError('unavailable', `instance ${id} was destroyed: ${reason}`)));
      this.live.delete(id);
      this.budget?.untrack(instanceHolding(id));
      this.log.warn({ instanceId: id, reason }, 'a persistent guest instance was destroyed with its thread');
      for (const l of this.goneListeners) l(id, reason);
    }
  }

  /** The pool closed: every instance is gone with its thread. */
  clear(): void {
    this.live.clear();
  }

  /** A live instance, or not_found (unavailable while the pool closes). */
  get(instanceId: string): PoolInstance {
    if (this.scheduler.closing) throw new FlurryError('unavailable', 'the guest pool is closing');
    const inst = this.live.get(instanceId);
    if (!inst) throw new FlurryError('not_found', `instance ${instanceId} does not exist`);
    return inst;
  }

  /** A live instance migrating in `role`, or bad_request. */
  migrating(instanceId: string, role: 'source' | 'target'): PoolInstance {
    const inst = this.get(instanceId);
    if (inst.migration?.role !== role) throw new FlurryError('bad_request', `instance ${instanceId} is not ${role === 'source' ? 'migrating away' : 'being received'}`);
    return inst;
  }

  /**
   * A migration step, run in the instance's thread between its requests.
   * `urgent`: ahead of the thread's other queued jobs (the stop-and-copy, while requests wait), told when it goes to the thread.
   */
  async migrationStep(inst: PoolInstance, op: MigrationOp, transfer: ArrayBuffer[] = [], urgent?: () => void): Promise<MigrationOpResult> {
    const answer = await this.scheduler.submitTo(inst.thread, {
      message: { type: 'instance-migrate', id: this.scheduler.messageId(), instanceId: inst.instanceId, op },
      transfer,
      // Reading or writing a whole large memory (round 0) may take far longer than a request; a step that
      // times out terminates the thread with its instances, so it gets the init limit.
      timeoutMs: Math.max(this.limits.callTimeoutMs, this.limits.initTimeoutMs),
      what: 'migration step',
      key: inst.key,
      instanceId: inst.instanceId,
      onDispatch: urgent,
    }, urgent !== undefined);
    if (answer.type !== 'migrated') throw new FlurryError('internal', `unexpected answer ${answer.type} to a migration step`);
    return answer.result;
  }
}
