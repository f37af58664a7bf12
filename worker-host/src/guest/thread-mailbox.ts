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
 */
import { MessageChannel, receiveMessageOnPort, type MessagePort, type Transferable } from 'node:worker_threads';
import { CallFrameSlot } from './call-frame.js';
import type { MailboxEnd, ToThread } from './thread-messages.js';

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

/** The main thread's end. */
export class ThreadMailbox {
  private readonly port: MessagePort;
  private readonly bell: Int32Array;
  private readonly calls = new CallFrameSlot();
  /** Messages posted: the number of the next one. */
  private sent = 0;
  /** The thread's end, to hand to it once in its `workerData` (and its transfer list). */
  readonly threadEnd: MailboxEnd;

  constructor() {
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    const doorbell = new SharedArrayBuffer(4);
    this.bell = new Int32Array(doorbell);
    this.threadEnd = { port: port2, doorbell, calls: this.calls.buffer };
  }

  /** Posts `msg` and wakes the thread if it sleeps. Through the port, `transfer` is moved; a call in the slot is copied. */
  post(msg: ToThread, transfer: readonly Transferable[] = []): void {
    if (!this.calls.write(msg, this.sent)) this.port.postMessage(msg, transfer);
    this.sent = (this.sent + 1) | 0;
    Atomics.add(this.bell, 0, 1);
    Atomics.notify(this.bell, 0);
  }

  /** Messages posted and not yet taken are dropped with the port. */
  close(): void {
    this.port.close();
  }
}

/**
 * The guest thread's end: hands each message to `handle`, in order, for as
 * long as the thread lives. Starts on the next turn of the event loop.
 */
export function serveMailbox(end: MailboxEnd, handle: (msg: ToThread) => void, idleWaitMs = IDLE_WAIT_MS): void {
  const bell = new Int32Array(end.doorbell);
  const calls = new CallFrameSlot(end.calls);
  let taken = 0;
  const serve = (): void => {
    // Sleeps until the doorbell rings (at once if it rang since the last message taken), at most idleWaitMs.
    Atomics.wait(bell, 0, taken, idleWaitMs);
    // Every message the doorbell counts is in the slot or on the port already: it is written before the ring.
    for (const rung = Atomics.load(bell, 0); taken !== rung; taken = (taken + 1) | 0) {
      const msg = calls.take(taken) ?? (receiveMessageOnPort(end.port)?.message as ToThread | undefined);
      if (!msg) break;
      handle(msg);
    }
    // Back to the event loop for a turn (due timers, V8's tasks, what the messages started: a task loop's promise), then wait again.
    setImmediate(serve);
  };
  setImmediate(serve);
}
