/**
 * The guest threads of a pool and the jobs they run: call threads take calls
 * from one FIFO queue, instance threads (one tenant's each, instance-threads.ts)
 * run only their instances' jobs in arrival order. Time limits are enforced
 * from this thread (a guest in an endless loop cannot answer messages): a job
 * past its limit ends its thread, which is replaced, as is one that crashes.
 */
import { fstatSync, writeSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import { EarliestDeadline, encode, encodeFrame, FlurryError, FrameType, type InvokeReply, type Logger } from '@flurry/core';
import type { NativePager } from '../native/pager.js';
import { GuestCallError, type GuestLimits, type PagerMode } from './call-types.js';
import { FifoQueue } from './fifo-queue.js';
import { chooseInstanceThread } from './instance-threads.js';
import { RegistrationSlot, terminateGuestThread } from './registration-slot.js';
import { StallClock } from './stall-clock.js';
import { ThreadMailbox } from './thread-mailbox.js';
import type { FromThread, GuestThreadData, ToThread } from './thread-messages.js';
import { isInstanceThread, type Answer, type GuestThread, type InstanceHolding, type InstanceThread, type Job, type JobSubmission, type ThreadEvents } from './thread-jobs.js';
import { guestThreadScript } from './worker-script.js';
import { cells, grantToken, inOwnCall, newPoolCells, newSlot, newTokenTable, SLOT, type Cells } from './thread-call-cells.js';
import { ThreadCallWatchdog, type ClaimedCall } from './thread-call-watchdog.js';

/** Call threads that read their own calls (thread-channel.ts): where they listen, and what they answer with. */
export interface ThreadChannelOptions {
  listenHost: string;
  hostId: string;
  maxFrameBytes: number;
}

/** Calls waiting for a thread beyond this are refused with no_capacity. */
export const MAX_QUEUED_CALLS = 10_000;
/** A thread that dies before it ever started is replaced after this delay, so a broken build cannot spin. */
const RESPAWN_DELAY_MS = 1000;

export class ThreadScheduler {
  /** Call threads and instance threads, counting replacements that are still starting. */
  private readonly threads = new Set<GuestThread>();
  /** Free call threads, most recently used last (its caches are the warmest). */
  private readonly idle: GuestThread[] = [];
  private readonly queue = new FifoQueue<Job>();
  private readonly respawnTimers = new Set<NodeJS.Timeout>();
  /** Threads started whose script has not said it listens yet. */
  private readonly readyWaiters = new Map<GuestThread, () => void>();
  private readonly script = guestThreadScript();
  private readonly stalls = new StallClock();
  /** One timer for the time limits of every thread's job, armed at the earliest. */
  private readonly deadlines = new EarliestDeadline((now) => this.expire(now));
  /** An instance thread started ahead for the next tenant that needs one: a thread takes about 150 ms to boot. */
  private spareInstanceThread: InstanceThread | undefined;
  private nextMessageId = 1;
  private inFlight = 0;
  private allIdle: (() => void) | undefined;
  /** Set once close has begun: nothing new is taken. */
  closing = false;
  /** Of call threads that read their own calls: the tokens granted, the watchdog's cells and the watchdog. */
  private readonly own?: { options: ThreadChannelOptions; tokens: SharedArrayBuffer; pool: SharedArrayBuffer; watchdog: ThreadCallWatchdog<GuestThread> };

  constructor(
    private readonly limits: GuestLimits,
    private readonly pager: PagerMode,
    private readonly native: NativePager | undefined,
    private readonly maxInstanceThreads: number,
    private readonly log: Logger,
    private readonly events: ThreadEvents,
    channels?: ThreadChannelOptions,
  ) {
    if (channels) {
      const pool = newPoolCells();
      const watchdog = new ThreadCallWatchdog<GuestThread>(
        cells(pool),
        () => this.callThreads().flatMap((t) => (t.own && !t.retired ? [{ slot: t.own.slot, owner: t }] : [])),
        (from, now) => this.stalls.ranSince(from - performance.timeOrigin, now - performance.timeOrigin),
        (thread, call) => this.ownCallTimedOut(thread, call),
      );
      this.own = { options: channels, tokens: newTokenTable(), pool, watchdog };
    }
  }

  /** Lets call threads take connections that say this token (its sha256). */
  grantToken(digest: Uint8Array): void {
    if (this.own) grantToken(this.own.tokens, digest);
  }

  /** The ports of the call threads that read their own calls now. */
  threadPorts(): number[] {
    return this.callThreads().flatMap((t) => (t.online && !t.retired && t.own?.port !== undefined ? [t.own.port] : []));
  }

  /** Calls read by call threads from their own connections and running now, by key id (thread-call-cells.ts), or all. */
  ownCalls(keyId?: number): number {
    let n = 0;
    for (const t of this.threads) {
      if (!t.own || t.retired || !inOwnCall(t.own.slot)) continue;
      if (keyId === undefined || Atomics.load(t.own.slot, SLOT.keyId) === BigInt(keyId)) n++;
    }
    return n;
  }

  /**
   * A call read by `thread` from its own connection ran past its limit and the watchdog claimed it: its caller is
   * answered `timeout` here, on the call's socket (the thread is stuck in its guest and writes nothing more), and
   * the thread is ended and replaced. A job posted to it meanwhile had not started: it goes first in the queue.
   */
  private ownCallTimedOut(thread: GuestThread, call: ClaimedCall): void {
    const message = `call exceeded ${call.limitMs} ms`;
    const reply: InvokeReply = { ok: false, error: { code: 'timeout', message }, hostId: this.own!.options.hostId };
    let answered = false;
    try {
      // The descriptor is the call's socket as long as the thread is in that call (closing it needs the thread's
      // loop); the inode check guards against the thread having died meanwhile and the number being reused.
      if (fstatSync(call.fd, { bigint: true }).ino === call.inode) {
        // Then `busy`: the gateway sends nothing more to this connection while the thread is being ended (a call it
        // sent meanwhile would be lost with the connection and sent again through the broker).
        const frame = Buffer.concat([encodeFrame(FrameType.reply, call.frameId, encode(reply)), encodeFrame(FrameType.busy, 0, new Uint8Array(0))]);
        answered = writeSync(call.fd, frame) === frame.length;
      }
    } catch {
      // Closed, or its buffer full: the caller sees the connection close and sends the call again elsewhere.
    }
    this.log.warn({ limitMs: call.limitMs, answered }, 'a call read by its guest thread timed out; ending its thread');
    const idleAt = this.idle.indexOf(thread);
    if (idleAt >= 0) this.idle.splice(idleAt, 1);
    const job = this.finishJob(thread);
    this.retire(thread, `a call on its thread exceeded ${call.limitMs} ms`);
    if (!job) return;
    const next = this.takeIdle();
    if (next) this.dispatch(next, job);
    else this.queue.unshift(job);
  }

  /** Starts `count` call threads and one instance thread ahead; resolves once the call threads run. */
  async start(count: number): Promise<void> {
    await Promise.all(Array.from({ length: count }, () => this.spawn(undefined).started));
    this.keepSpareInstanceThread();
  }

  /** A new message id (answers name the message they answer). */
  messageId(): number {
    return this.nextMessageId++;
  }

  /** Jobs running on threads. */
  get running(): number {
    return this.inFlight;
  }

  /** Calls waiting for a free call thread. */
  get queued(): number {
    return this.queue.length;
  }

  /** Call threads, counting replacements that are still starting. */
  get callThreadCount(): number {
    return this.threads.size - this.instanceThreads().length;
  }

  callThreads(): GuestThread[] {
    return [...this.threads].filter((t) => !isInstanceThread(t));
  }

  /** The threads running a job now. */
  busyThreads(): GuestThread[] {
    return [...this.threads].filter((t) => t.job !== undefined);
  }

  /** Every instance thread: those of tenants and the one started ahead. */
  private instanceThreads(): InstanceThread[] {
    return [...this.threads].filter(isInstanceThread);
  }

  /** The instance threads given to tenants, with their instances (or about to hold some). */
  tenantThreads(): InstanceThread[] {
    return this.instanceThreads().filter((t) => t.holding.tenant !== undefined);
  }

  /** Runs a job on the next free call thread (FIFO); refused with no_capacity past MAX_QUEUED_CALLS waiting. */
  submit(job: JobSubmission): Promise<Answer> {
    return new Promise<Answer>((resolve, reject) => {
      const full = settledBy(job, resolve, reject);
      if (this.closing) return reject(new FlurryError('unavailable', 'the guest pool is closing'));
      const thread = this.takeIdle();
      if (thread) return this.dispatch(thread, full);
      if (this.queue.length >= MAX_QUEUED_CALLS) return reject(new FlurryError('no_capacity', `all ${this.callThreadCount} guest threads are busy and ${MAX_QUEUED_CALLS} calls are waiting`));
      this.queue.push(full);
    });
  }

  /** Runs a job that only `thread` may run (one of its instances'); `first`: ahead of its other waiting jobs. */
  submitTo(thread: InstanceThread, job: JobSubmission, first = false): Promise<Answer> {
    return new Promise<Answer>((resolve, reject) => {
      const full = settledBy(job, resolve, reject);
      if (this.closing) return reject(new FlurryError('unavailable', 'the guest pool is closing'));
      if (thread.retired) return reject(new FlurryError('unavailable', `instance ${job.instanceId ?? '?'} was destroyed with its thread`));
      if (thread.online && !thread.job) return this.dispatch(thread, full);
      if (first) thread.holding.pinned.unshift(full);
      else thread.holding.pinned.push(full);
    });
  }

  /**
   * The instance thread for `tenant`'s next instance, claimed until settleClaim:
   * one of its threads with room, or a new one (the one started ahead if there is one).
   */
  claimInstanceThread(tenant: string): InstanceThread {
    const threads = this.tenantThreads().map((thread) => ({ thread, tenant: thread.holding.tenant!, load: thread.holding.instances.size + thread.holding.claims }));
    const chosen = chooseInstanceThread(threads, tenant, this.maxInstanceThreads);
    const thread = chosen === 'new' ? this.newInstanceThread(tenant) : chosen.thread;
    thread.holding.claims++;
    return thread;
  }

  /**
   * Keeps an instance thread of `tenant` (one of its threads with room, or a new one: the spare, replaced at
   * once) until `release` is called, counted as one instance of it. A service's standby parent holds one
   * (service-parents.ts): an instance migrated here then takes that thread, not the spare, whose replacement
   * booted (100–360 ms of a core) while the migration copied. Calling `release` again does nothing.
   */
  reserveInstanceThread(tenant: string): () => void {
    const thread = this.claimInstanceThread(tenant);
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      thread.holding.claims--;
      this.stopIfEmpty(thread);
    };
  }

  /** An instance claimed on `thread` was made (`made`) or failed: its claim ends. */
  settleClaim(thread: InstanceThread, instanceId: string, made: boolean): void {
    thread.holding.claims--;
    if (made) thread.holding.instances.add(instanceId);
    this.stopIfEmpty(thread);
  }

  /** An instance left `thread` (destroyed or migrated away): its waiting jobs are failed, and the thread stops once empty. */
  instanceLeft(thread: InstanceThread, instanceId: string): void {
    thread.holding.instances.delete(instanceId);
    for (const job of thread.holding.pinned.extract((j) => j.instanceId === instanceId)) job.reject(new FlurryError('not_found', `instance ${instanceId} was destroyed`));
    // After the request in progress, if any: the thread takes its mailbox in order.
    if (!thread.retired) thread.mailbox.post({ type: 'instance-destroy', instanceId } satisfies ToThread);
    this.stopIfEmpty(thread);
  }

  /**
   * Fails every queued and running job that `chosen` picks with `reason`:
   * running ones end with their threads, which are replaced (a thread asleep
   * in a fault is released first).
   */
  abort(chosen: (job: Job) => boolean, reason: FlurryError): void {
    for (const job of this.queue.extract(chosen)) job.reject(reason);
    for (const thread of [...this.threads]) {
      if (!thread.job || !chosen(thread.job)) continue;
      const job = this.finishJob(thread)!;
      this.log.warn({ callId: job.callId, key: job.key, reason: reason.message }, `guest ${job.what} aborted; replacing its thread`);
      this.retire(thread, `its thread was terminated: ${reason.message}`);
      job.reject(reason);
    }
  }

  /** Fails queued jobs, waits for running ones (at most `graceMs`), then terminates every thread. */
  async close(graceMs: number): Promise<void> {
    this.closing = true;
    this.own?.watchdog.stop();
    this.stalls.stop();
    this.deadlines.stop();
    for (const timer of this.respawnTimers) clearTimeout(timer);
    this.respawnTimers.clear();
    for (const job of this.queue.drain()) job.reject(new FlurryError('unavailable', 'the guest pool is closing'));
    for (const thread of this.instanceThreads()) for (const job of thread.holding.pinned.drain()) job.reject(new FlurryError('unavailable', 'the guest pool is closing'));
    if (this.inFlight > 0) await Promise.race([new Promise<void>((resolve) => (this.allIdle = resolve)), delay(graceMs, undefined, { ref: false })]);
    const exits: Promise<number>[] = [];
    for (const thread of this.threads) {
      thread.retired = true;
      const job = this.finishJob(thread);
      job?.reject(new FlurryError('unavailable', `the guest pool closed before this ${job.what} finished`));
      exits.push(this.terminate(thread));
    }
    this.threads.clear();
    this.idle.length = 0;
    await Promise.all(exits);
  }

  /** A free call thread, one not running a call of its own connection when there is one (most recently used first). */
  private takeIdle(): GuestThread | undefined {
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const own = this.idle[i]!.own;
      if (!own || !inOwnCall(own.slot)) return this.idle.splice(i, 1)[0];
    }
    return this.idle.pop();
  }

  /** Ends a thread, answering any fault of lazy memory it sleeps in (it would never exit otherwise). */
  private terminate(thread: GuestThread): Promise<number> {
    return terminateGuestThread(thread.worker, thread.slot, this.native);
  }

  private dispatch(thread: GuestThread, job: Job): void {
    thread.job = job;
    job.onDispatch?.();
    this.inFlight++;
    if (thread.own) thread.own.usAtDispatch = Atomics.load(thread.own.slot, SLOT.ownUs);
    thread.mailbox.post(job.message, job.transfer);
    this.limitFrom(thread, (job.dispatchedAt = performance.now()) + job.timeoutMs);
  }

  /** The thread's job times out at `deadline` (performance.now()). */
  private limitFrom(thread: GuestThread, deadline: number): void {
    thread.deadline = deadline;
    this.deadlines.require(deadline);
  }

  /** Restarts a task clone's time limit: it counts per task, and not while the clone waits for tasks (`on` false). */
  private limit(thread: GuestThread, job: Job, on: boolean): void {
    job.dispatchedAt = performance.now();
    if (on) this.limitFrom(thread, job.dispatchedAt + job.timeoutMs);
    else thread.deadline = undefined;
  }

  /** Detaches the thread's job (if any) and stops its timer. */
  private finishJob(thread: GuestThread): Job | undefined {
    const job = thread.job;
    if (!job) return undefined;
    thread.job = undefined;
    thread.deadline = undefined;
    this.inFlight--;
    if (this.inFlight === 0) this.allIdle?.();
    return job;
  }

  /** Gives a free thread its next job: an instance thread its instances' next (or stops it once it holds none), a call thread the next queued call. */
  private release(thread: GuestThread): void {
    if (this.closing || thread.retired) return;
    if (isInstanceThread(thread)) {
      const next = thread.holding.pinned.shift();
      return next ? this.dispatch(thread, next) : this.stopIfEmpty(thread);
    }
    const next = this.queue.shift();
    if (next) this.dispatch(thread, next);
    else this.idle.push(thread);
  }

  /** Stops a tenant's instance thread that holds no instance, is making none and has nothing to run. */
  private stopIfEmpty(thread: InstanceThread): void {
    const { holding } = thread;
    if (holding.tenant === undefined || thread.retired || thread.job || holding.instances.size > 0 || holding.claims > 0 || holding.pinned.length > 0) return;
    this.stop(thread);
    this.keepSpareInstanceThread();
  }

  /** Ends the jobs whose time is up; answers the earliest deadline left. */
  private expire(now: number): number | undefined {
    let next: number | undefined;
    for (const thread of [...this.threads]) {
      if (thread.deadline !== undefined && thread.deadline <= now) this.timedOut(thread, now);
      if (thread.deadline !== undefined && (next === undefined || thread.deadline < next)) next = thread.deadline;
    }
    return next;
  }

  private timedOut(thread: GuestThread, now: number): void {
    const current = thread.job;
    if (!current) return void (thread.deadline = undefined);
    // A process stopped meanwhile (SIGSTOP) stopped its guest too: only the time the guest could run counts; nor
    // does the time its thread spent in calls of its own connection before it took this job.
    const own = thread.own ? Number(Atomics.load(thread.own.slot, SLOT.ownUs) - thread.own.usAtDispatch) / 1000 : 0;
    const ran = this.stalls.ranSince(current.dispatchedAt ?? 0, now) - own;
    if (ran < current.timeoutMs) return void (thread.deadline = now + current.timeoutMs - ran);
    const job = this.finishJob(thread)!;
    // The job's own limit: a clone may carry one of its own (a job's timeoutMs), a migration step a longer one.
    const limit = job.timeoutMs;
    this.log.warn({ callId: job.callId, key: job.key, instanceId: job.instanceId, limitMs: limit }, `guest ${job.what} timed out; ending its thread`);
    this.retire(thread, `a ${job.what}${job.instanceId ? ` of instance ${job.instanceId}` : ''} on its thread exceeded ${limit} ms`);
    if (job.instanceId) job.reject(new FlurryError('timeout', `instance ${job.instanceId}: ${job.what} exceeded ${limit} ms; the instance was destroyed with its thread`));
    else job.reject(new FlurryError('timeout', `${job.what} exceeded ${limit} ms`));
  }

  /** Terminates a thread on purpose with its instances; a call thread gets a replacement (instance threads start when needed). */
  private retire(thread: GuestThread, reason = 'its thread was terminated'): void {
    this.stop(thread);
    this.instancesLost(thread, reason);
    if (isInstanceThread(thread)) this.keepSpareInstanceThread();
    else this.replace();
  }

  /** An instance thread's instances are gone with it: the pool forgets them, then their waiting jobs fail naming each. */
  private instancesLost(thread: GuestThread, reason: string): void {
    if (!isInstanceThread(thread)) return;
    this.events.instancesLost(thread, reason);
    for (const job of thread.holding.pinned.drain()) {
      job.reject(new FlurryError('unavailable', `instance ${job.instanceId ?? '?'} was destroyed: ${reason}`));
    }
    thread.holding.instances.clear();
  }

  /** Terminates a thread on purpose; its snapshots are freed once it has exited. */
  private stop(thread: GuestThread): void {
    thread.retired = true;
    this.threads.delete(thread);
    this.terminate(thread)
      // Until it has exited, the thread may still map a snapshot's memfd (making a spare, say).
      .then(() => this.events.threadExited(thread))
      .catch((err: unknown) => this.log.error({ err }, 'terminating a guest thread failed'));
  }

  private replace(delayMs = 0): void {
    if (this.closing) return;
    const start = () => this.spawn(undefined).started.catch((err: unknown) => this.log.error({ err }, 'a replacement guest thread failed to start'));
    if (delayMs === 0) return void start();
    const timer = setTimeout(() => {
      this.respawnTimers.delete(timer);
      void start();
    }, delayMs);
    this.respawnTimers.add(timer);
  }

  /** An empty instance thread for `tenant`: the one started ahead (another is then started ahead), or a new one. */
  private newInstanceThread(tenant: string): InstanceThread {
    const spare = this.spareInstanceThread;
    this.spareInstanceThread = undefined;
    const thread = spare ?? this.spawnInstanceThread();
    thread.holding.tenant = tenant;
    this.keepSpareInstanceThread();
    return thread;
  }

  /**
   * Keeps an instance thread started ahead while the host runs fewer than its
   * most instance threads (the one ahead counting), so that a tenant's next
   * thread need not boot. Nothing runs in it before a tenant takes it.
   */
  private keepSpareInstanceThread(delayMs = 0): void {
    if (this.closing || this.spareInstanceThread || this.instanceThreads().length >= this.maxInstanceThreads) return;
    if (delayMs === 0) {
      this.spareInstanceThread = this.spawnInstanceThread();
      return;
    }
    const timer = setTimeout(() => {
      this.respawnTimers.delete(timer);
      this.keepSpareInstanceThread();
    }, delayMs);
    this.respawnTimers.add(timer);
  }

  /** Starts an empty instance thread of no tenant yet; one that fails to start fails the jobs waiting for it. */
  private spawnInstanceThread(): InstanceThread {
    const thread = this.spawn<InstanceHolding>({ instances: new Set(), claims: 0, pinned: new FifoQueue<Job>() });
    thread.started.catch(() => undefined);
    return thread;
  }

  /**
   * Starts a thread: a call thread (loaded with every snapshot) or, given
   * `holding`, an instance thread (sent the keys of its instances as they are
   * placed). `started` settles once it runs.
   */
  private spawn<H extends InstanceHolding | undefined>(holding: H): GuestThread & { holding: H } {
    const slot = new RegistrationSlot();
    const mailbox = new ThreadMailbox();
    const own = !holding && this.own ? newSlot() : undefined;
    const workerData: GuestThreadData = {
      limits: this.limits, pager: this.pager, registrationSlot: slot.buffer, mailbox: mailbox.threadEnd,
      ...(own && this.own && { channel: { ...this.own.options, limits: this.limits, tokens: this.own.tokens, pool: this.own.pool, slot: own } }),
    };
    const worker = new Worker(this.script, { workerData, transferList: [mailbox.threadEnd.port] });
    const thread: GuestThread & { holding: H } = { worker, mailbox, slot, online: false, retired: false, started: Promise.resolve(), holding, ...(own && { own: { slot: cells(own), usAtDispatch: 0n } }) };
    this.threads.add(thread);
    if (!holding) this.events.callThreadStarted(thread);
    thread.worker.on('message', (msg: FromThread) => this.onMessage(thread, msg));
    thread.worker.on('error', (err) => (thread.lastError = err));
    thread.worker.on('exit', (code) => this.onExit(thread, code));
    // Online is not ready: the thread loads its modules after 'online' (seconds on a loaded machine), and a job sent then would count that time against its limit.
    thread.started = new Promise((resolve, reject) => {
      this.readyWaiters.set(thread, () => {
        thread.online = true;
        this.release(thread);
        resolve();
      });
      thread.worker.once('exit', () => reject(thread.lastError ?? new Error('the guest thread exited before it started')));
    });
    return thread;
  }

  private onMessage(thread: GuestThread, msg: FromThread): void {
    if (msg.type === 'channel-deadline') return this.own?.watchdog.wake();
    if (msg.type === 'channel-logs') return this.events.channelLogs?.(msg);
    if (msg.type === 'ready') {
      if (thread.own) thread.own.port = msg.port;
      const ready = this.readyWaiters.get(thread);
      this.readyWaiters.delete(thread);
      return ready?.();
    }
    if (msg.type === 'dropped') return this.events.snapshotDropped(thread, msg.snapshotId);
    const job = thread.job;
    if (!job || job.message.id !== msg.id) {
      // A snapshot whose warm timed out meanwhile: nobody will hold it.
      if (msg.type === 'warmed') this.events.snapshotOrphaned(msg.snapshot);
      return;
    }
    if (msg.type === 'progress') return job.onProgress?.(msg.done, msg.total);
    if (msg.type === 'started') return job.onStarted?.();
    if (msg.type === 'task') {
      if (msg.step.kind === 'want' || msg.step.kind === 'start') this.limit(thread, job, msg.step.kind === 'start');
      return job.onTask?.(msg.step, (tasks, error) => thread.job === job && thread.mailbox.post({ type: 'tasks', id: msg.id, tasks, error } satisfies ToThread));
    }
    this.finishJob(thread);
    if (msg.type === 'failed') job.reject(new GuestCallError(msg.error.code, msg.error.message, msg.logs, msg.droppedLogLines));
    else job.resolve(msg);
    this.release(thread);
  }

  private onExit(thread: GuestThread, code: number): void {
    thread.mailbox.close();
    this.readyWaiters.delete(thread);
    if (thread.retired) return;
    thread.retired = true;
    this.threads.delete(thread);
    this.events.threadExited(thread);
    const idleAt = this.idle.indexOf(thread);
    if (idleAt >= 0) this.idle.splice(idleAt, 1);
    const reason = thread.lastError?.message ?? `exit code ${code}`;
    this.log.error({ reason, callId: thread.job?.callId, key: thread.job?.key, instanceThread: isInstanceThread(thread) }, 'a guest thread died');
    const job = this.finishJob(thread);
    this.instancesLost(thread, `its thread died: ${reason}`);
    job?.reject(new FlurryError('internal', `the guest thread running this ${job.what}${job.instanceId ? ` of instance ${job.instanceId}` : ''} died: ${reason}`));
    if (thread === this.spareInstanceThread) this.spareInstanceThread = undefined;
    if (isInstanceThread(thread)) this.keepSpareInstanceThread(thread.online ? 0 : RESPAWN_DELAY_MS);
    else this.replace(thread.online ? 0 : RESPAWN_DELAY_MS);
  }
}

/** The submission made a job in place: a call on the host's path allocates no copy of it (it is the caller's own object). */
function settledBy(job: JobSubmission, resolve: (answer: Answer) => void, reject: (err: FlurryError) => void): Job {
  const full = job as Job;
  full.resolve = resolve;
  full.reject = reject;
  return full;
}
