/**
 * The one way from the pool's main thread to a guest thread: a MessagePort of
 * its own, a slot for a call read in place (call-frame.ts), and a doorbell, a
 * counter in a SharedArrayBuffer of the messages posted. The main thread
 * writes a call into the slot when it fits, posts anything else on the port,
 * and rings; an idle guest thread sleeps in `Atomics.wait` on the doorbell,
 * not in its event loop, and takes its messages as soon as the futex wakes
 * it. Waking from a futex skips libuv's poll and Node's message dispatch; the
 * slot skips the structured clone (docs/fork.md, "The guest thread's
 * mailbox"). The doorbell's count numbers the messages: the thread takes
 * message n from the slot if it holds n, else from the port, so every message
 * is handled in the order posted: a snapshot's `load` before its first call,
 * an `evict` after the calls sent before it.
 *
 * A thread blocked in `Atomics.wait` does not run its event loop (timers,
 * promise continuations, V8's own tasks), so the thread waits at most
 * IDLE_WAIT_MS at a time and returns to its loop after every message it
 * handled and every wait that timed out.
 *
 * Before it sleeps, a thread that has just been busy polls its doorbell for
 * a short while (SpinWindow): a message that comes meanwhile is taken without
 * the kernel waking a sleeping thread (0.1–0.15 ms on this VM). The window
 * adapts as the kernel's haltpoll governor does, and at most SPINNERS_PER_CORE
 * of the process's threads per core poll at once, as Go's scheduler bounds its
 * spinning threads (docs/fork.md, "Polling before sleeping").
 */
import { availableParallelism } from 'node:os';
import { MessageChannel, receiveMessageOnPort, type MessagePort, type Transferable } from 'node:worker_threads';
import { CallFrameSlot } from './call-frame.js';
import type { MailboxEnd, SpinLimits, ToThread } from './thread-messages.js';

/**
 * The longest an idle thread sleeps before it gives its event loop a turn:
 * what V8's delayed tasks (its memory reducer, for one) and any timer of the
 * thread may be late by. The guest thread sets no timer of its own, and the
 * tasks that follow a message run in the turn after it. Each turn costs the
 * thread CPU: 8 idle threads turning every 100 ms took 1.4% of a core on
 * this machine against 0.1% in their event loops; a message wakes a thread at
 * once whatever this is.
 */
export const IDLE_WAIT_MS = 1000;

/**
 * The longest a thread polls its doorbell before it sleeps, in µs: a thread
 * that the kernel must wake takes 0.1–0.15 ms to run again here (more on cold
 * caches), so a message that comes later than this is as well served by the
 * wake-up, and polling longer would only take a core from the host's other
 * threads and processes. The kernel's haltpoll polls up to 200 µs by default.
 */
export const SPIN_MAX_US = 300;
/** The window a thread first polls for once messages come soon after it went idle (haltpoll's grow_start: 50 µs). */
export const SPIN_GROW_START_US = 50;
/** Threads of a process that may poll at once, per core (Go's scheduler: at most half its processors spinning). */
export const SPINNERS_PER_CORE = 0.5;

/**
 * How long an idle thread polls its doorbell before it sleeps, adapted to
 * how soon its messages come, as the kernel's haltpoll governor adapts its
 * poll: a message that came after the window but within the cap grows it
 * (doubled, from `growStartUs`; a longer window would have caught it), one
 * caught within it keeps it, and an idle spell past the cap (no message
 * soon, or none before the thread's longest wait) halves it, to none below
 * `growStartUs`. A thread with nothing recent does not poll at all.
 *
 *     const w = new SpinWindow(300, 50);
 *     w.observe(120); // 50: it slept, and a 50 µs poll would not have caught it: grow
 *     w.observe(120); // 100
 *     w.observe(120); // 200, and caught from now on
 *     w.observe(Infinity); // 100: nothing came
 */
export class SpinWindow {
  /** µs to poll before the next sleep. */
  us = 0;

  constructor(
    readonly maxUs = SPIN_MAX_US,
    readonly growStartUs = Math.min(SPIN_GROW_START_US, maxUs),
  ) {}

  /** The thread's last idle spell: `idleUs` from going idle to its next message (Infinity: none came). */
  observe(idleUs: number): void {
    if (idleUs <= this.us) return;
    if (idleUs <= this.maxUs) {
      this.us = Math.min(this.maxUs, Math.max(this.growStartUs, this.us * 2));
      return;
    }
    const half = this.us / 2;
    this.us = half < this.growStartUs ? 0 : half;
  }
}

/** The doorbell's SharedArrayBuffer: the messages posted (Int32 at 0), and when the last was posted (Float64 at 8, epoch ms). */
const BELL_BYTES = 16;
const POSTED_AT = 1;

/** Polling bounds every mailbox made in this process shares: the places of the threads polling now. */
let processSpin: SpinLimits | undefined;
/** Mailbox ids, unique in the process: a polling thread holds its place under its id. */
let lastMailboxId = 0;

function spinLimits(): SpinLimits {
  processSpin ??= { maxUs: pollCapUs(process.env.FLURRY_GUEST_POLL_US), spinners: spinPlaces(Math.max(1, Math.floor(availableParallelism() * SPINNERS_PER_CORE))) };
  return processSpin;
}

/**
 * The cap on polling, µs: FLURRY_GUEST_POLL_US when set (0 turns polling off, for hosts whose cores are better
 * left to other work), else SPIN_MAX_US; at most 1000.
 */
export function pollCapUs(env: string | undefined): number {
  if (env === undefined || env === '') return SPIN_MAX_US;
  const us = Number(env);
  if (!Number.isInteger(us) || us < 0 || us > 1000) throw new RangeError(`FLURRY_GUEST_POLL_US must be a whole number of µs from 0 to 1000, got ${JSON.stringify(env)}`);
  return us;
}

/** Room for `n` threads polling at once. */
export function spinPlaces(n: number): SharedArrayBuffer {
  return new SharedArrayBuffer(4 * n);
}

/**
 * Polls for at most `us` µs in a place of `places` held under `id` (none free: false at once; the process's threads
 * polling at once are bounded): true once `rang`, or, asked every 16 spins (a system call each, about a µs),
 * `readable`. A thread terminated while polling keeps its place until its mailbox is closed.
 */
function pollInPlace(places: Int32Array, id: number, us: number, rang: () => boolean, readable?: () => boolean): boolean {
  if (us <= 0) return false;
  let place = 0;
  while (place < places.length && Atomics.compareExchange(places, place, 0, id) !== 0) place++;
  if (place === places.length) return false;
  try {
    // The clock read every 64 spins (well under a µs apart), not every spin: each performance.now() may box a
    // heap number, and a 300 µs poll reading it each spin left the thread a scavenge every few polls.
    const until = performance.now() + us / 1000;
    for (let spins = 1; ; spins++) {
      if (rang()) return true;
      if (readable && (spins & 15) === 0 && readable()) return true;
      if ((spins & 63) === 0 && performance.now() >= until) return false;
    }
  } finally {
    Atomics.store(places, place, 0);
  }
}

/** The main thread's end. */
export class ThreadMailbox {
  private readonly port: MessagePort;
  private readonly bell: Int32Array;
  private readonly postedAt: Float64Array;
  private readonly calls = new CallFrameSlot();
  private readonly places: Int32Array;
  private readonly id = ++lastMailboxId;
  /** Messages posted: the number of the next one. */
  private sent = 0;
  /** The thread's end, to hand to it once in its `workerData` (and its transfer list). */
  readonly threadEnd: MailboxEnd;

  /** `spin`: how the thread polls before it sleeps (by default the process's bounds, shared by all its mailboxes; maxUs 0: never). */
  constructor(spin: SpinLimits = spinLimits()) {
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    const doorbell = new SharedArrayBuffer(BELL_BYTES);
    this.bell = new Int32Array(doorbell, 0, 1);
    this.postedAt = new Float64Array(doorbell);
    this.places = new Int32Array(spin.spinners);
    this.threadEnd = { port: port2, doorbell, calls: this.calls.buffer, spin, id: this.id };
  }

  /** Posts `msg` and wakes the thread if it sleeps. Through the port, `transfer` is moved; a call in the slot is copied. */
  post(msg: ToThread, transfer: readonly Transferable[] = []): void {
    if (!this.calls.write(msg, this.sent)) this.port.postMessage(msg, transfer);
    this.sent = (this.sent + 1) | 0;
    // Read by the thread only to adapt its polling: a plain store, before the ring that publishes it.
    this.postedAt[POSTED_AT] = performance.timeOrigin + performance.now();
    Atomics.add(this.bell, 0, 1);
    Atomics.notify(this.bell, 0);
  }

  /**
   * Messages posted and not yet taken are dropped with the port. Call once the thread has exited: a place it
   * held to poll (it was terminated while polling) is freed.
   */
  close(): void {
    this.port.close();
    for (let i = 0; i < this.places.length; i++) Atomics.compareExchange(this.places, i, this.id, 0);
  }
}

/** Work a thread does while no message waits, in short steps. */
export interface IdleWork {
  /** Takes the next step; false once nothing is left. */
  step(): boolean;
}

/**
 * The guest thread's end: hands each message to `handle`, in order, for as
 * long as the thread lives, with when the latest message was posted (ms
 * since the epoch, on the posting thread's clock); between messages takes
 * the steps of `idle` while no message waits, then polls and sleeps. Starts
 * on the next turn of the event loop.
 */
export function serveMailbox(end: MailboxEnd, handle: (msg: ToThread, postedAt: number) => void, opts: { idle?: IdleWork; idleWaitMs?: number; inLoop?: LoopSources } = {}): MailboxServer {
  const { idle, idleWaitMs = IDLE_WAIT_MS } = opts;
  const bell = new Int32Array(end.doorbell, 0, 1);
  const postedAt = new Float64Array(end.doorbell);
  const calls = new CallFrameSlot(end.calls);
  if (opts.inLoop) return serveInLoop(end, bell, postedAt, calls, handle, idle, opts.inLoop);
  const places = new Int32Array(end.spin.spinners);
  const window = new SpinWindow(end.spin.maxUs);
  let taken = 0;
  /** Polls the doorbell for at most `us` µs if a place to poll is free; true if it rang. */
  const poll = (us: number): boolean => pollInPlace(places, end.id, us, () => Atomics.load(bell, 0) !== taken);
  const serve = (): void => {
    // A message that comes meanwhile waits for one step, not for all of them.
    while (Atomics.load(bell, 0) === taken && idle?.step());
    const idleSince = performance.timeOrigin + performance.now();
    // Polls a while if messages came soon lately, then sleeps until the doorbell rings (at once if it rang since
    // the last message taken), at most idleWaitMs.
    const rang = Atomics.load(bell, 0) !== taken || poll(window.us) || Atomics.wait(bell, 0, taken, idleWaitMs) !== 'timed-out';
    // From going idle to the last message's post: 0 if it came before (or during the event loop's turn).
    window.observe(rang ? Math.max(0, (postedAt[POSTED_AT] - idleSince) * 1000) : Infinity);
    // Every message the doorbell counts is in the slot or on the port already: it is written before the ring.
    for (const rung = Atomics.load(bell, 0); taken !== rung; taken = (taken + 1) | 0) {
      const msg = calls.take(taken) ?? (receiveMessageOnPort(end.port)?.message as ToThread | undefined);
      if (!msg) break;
      handle(msg, postedAt[POSTED_AT]);
    }
    // Back to the event loop for a turn (due timers, V8's tasks, what the messages started: a task loop's promise), then wait again.
    setImmediate(serve);
  };
  setImmediate(serve);
  // Idle work restarts before every sleep: nothing to kick.
  return { kick: () => undefined, worked: () => undefined };
}

/** Node 20's V8 has `Atomics.waitAsync`; TypeScript's lib declares it from es2024 on. */
declare global {
  interface Atomics {
    waitAsync(typedArray: Int32Array, index: number, value: number, timeout?: number): { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
  }
}

/** A mailbox being served. */
export interface MailboxServer {
  /** Work came from elsewhere than the mailbox (a thread's own connection): the idle steps start again. */
  kick(): void;
  /** Such work arrived now: how soon after going idle, for the polling window. */
  worked(): void;
}

/** What else wakes a thread that sleeps in its event loop: its sockets, which it can poll without waiting. */
export interface LoopSources {
  /** Whether any of its sockets has data waiting (false where it cannot tell). */
  readable(): boolean;
}

/**
 * serveMailbox for a thread that also reads its own connections (thread-channel.ts): it sleeps in its event loop,
 * where its sockets wake it, and the doorbell wakes it through `Atomics.waitAsync` (a futex waiter that resolves a
 * promise in the thread's loop). Between messages and calls it takes the idle steps one per turn of its loop, so a
 * call or a message that comes meanwhile waits for one step at most. It does not poll: its socket's call would not
 * be seen by a poll of the doorbell.
 */
function serveInLoop(end: MailboxEnd, bell: Int32Array, postedAt: Float64Array, calls: CallFrameSlot, handle: (msg: ToThread, postedAt: number) => void, idle: IdleWork | undefined, sources: LoopSources): MailboxServer {
  let taken = 0;
  let stepping = false;
  let waiting = false;
  const places = new Int32Array(end.spin.spinners);
  const window = new SpinWindow(end.spin.maxUs);
  /** When it went idle (epoch ms), until the next message or call; undefined while it works. */
  let idleSince: number | undefined;
  const worked = (at: number): void => {
    if (idleSince === undefined) return;
    window.observe(Math.max(0, (at - idleSince) * 1000));
    idleSince = undefined;
  };
  /** Polls the doorbell and the sockets for at most `us` µs if a place to poll is free; true if either has something. */
  const poll = (us: number): boolean => pollInPlace(places, end.id, us, () => Atomics.load(bell, 0) !== taken, () => sources.readable());
  const take = (): void => {
    if (Atomics.load(bell, 0) !== taken) worked(postedAt[POSTED_AT]);
    for (const rung = Atomics.load(bell, 0); taken !== rung; taken = (taken + 1) | 0) {
      const msg = calls.take(taken) ?? (receiveMessageOnPort(end.port)?.message as ToThread | undefined);
      if (!msg) break;
      handle(msg, postedAt[POSTED_AT]);
    }
  };
  const step = (): void => {
    stepping = false;
    take();
    if (idle?.step()) {
      stepping = true;
      setImmediate(step);
      return;
    }
    idleSince ??= performance.timeOrigin + performance.now();
    // Something came while polling: back through the loop (its poll reads the socket), then here again.
    if (poll(window.us)) return kick();
    arm();
  };
  const arm = (): void => {
    if (waiting) return;
    const wait = Atomics.waitAsync(bell, 0, taken);
    if (!wait.async) return kick();
    waiting = true;
    void wait.value.then(() => {
      waiting = false;
      take();
      kick();
    });
  };
  const kick = (): void => {
    if (stepping) return;
    stepping = true;
    setImmediate(step);
  };
  kick();
  return { kick, worked: () => worked(performance.timeOrigin + performance.now()) };
}
