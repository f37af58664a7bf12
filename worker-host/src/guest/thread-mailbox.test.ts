/** A guest thread's mailbox: one order for every message, transfers, the thread's event loop while it sleeps, and a pool's threads reached through it. */
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '@flurry/core';
import { slowModule } from '../../../test/helpers/wat.js';
import { GuestPool } from './guest-pool.js';
import { CALL_FRAME_BYTES } from './call-frame.js';
import { IDLE_WAIT_MS, pollCapUs, SpinWindow, spinPlaces, ThreadMailbox } from './thread-mailbox.js';
import type { SpinLimits, ToThread } from './thread-messages.js';

// Threads run JavaScript: the built module (the guest threads use it from there too).
const built = new URL('../../dist/guest/thread-mailbox.js', import.meta.url).href;

/** The echo threads' longest wait, shorter than the guest threads' so that these tests need not wait for theirs. */
const TEST_IDLE_WAIT_MS = 50;

/**
 * A thread that echoes what it is sent: each message's type and id, and the
 * sum of its input's bytes; a `tasks` message (id n) answers from a promise
 * continuation, after the handler returned, and a timer in the thread reports
 * each time it fires.
 */
const ECHO_THREAD = `
const { parentPort, workerData } = require('node:worker_threads');
import(${JSON.stringify(built)}).then(({ serveMailbox }) => {
  if (workerData.tick) setInterval(() => parentPort.postMessage({ tick: performance.now() }), workerData.tick);
  // With idleSteps: each message leaves that many steps of idle work; answers say how many ran. The test holds
  // each step at a gate it opens (gate[0]: steps that may finish), and sees the step in progress (gate[1]) and
  // the steps done (gate[2]): what runs when does not depend on the machine's speed.
  let left = 0;
  let done = 0;
  const gate = workerData.gate && new Int32Array(workerData.gate);
  const idle = workerData.idleSteps ? { step() {
    if (left === 0) return false;
    Atomics.store(gate, 1, done + 1);
    for (let open; (open = Atomics.load(gate, 0)) <= done;) Atomics.wait(gate, 0, open);
    left--;
    done++;
    Atomics.store(gate, 2, done);
    return left > 0;
  } } : undefined;
  serveMailbox(workerData.mailbox, (msg) => {
    const sum = msg.input ? msg.input.reduce((s, b) => s + b, 0) : undefined;
    if (msg.type === 'tasks') return void Promise.resolve().then(() => parentPort.postMessage({ type: 'later', id: msg.id }));
    parentPort.postMessage({ type: msg.type, id: msg.id ?? msg.snapshotId, sum, ...(idle && { done }) });
    left = workerData.idleSteps ?? 0;
  }, { idleWaitMs: workerData.idleWaitMs, idle });
  parentPort.postMessage({ ready: true });
});`;

const workers: Worker[] = [];
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.terminate()));
});

async function echoThread(tick?: number, opts: { spin?: SpinLimits; idleSteps?: number; gate?: SharedArrayBuffer } = {}): Promise<{ mailbox: ThreadMailbox; worker: Worker; next(): Promise<Record<string, unknown>>; ticks: number[] }> {
  const mailbox = new ThreadMailbox(opts.spin);
  const worker = new Worker(ECHO_THREAD, { eval: true, workerData: { mailbox: mailbox.threadEnd, tick, idleWaitMs: TEST_IDLE_WAIT_MS, idleSteps: opts.idleSteps, gate: opts.gate }, transferList: [mailbox.threadEnd.port] });
  workers.push(worker);
  const answers: Record<string, unknown>[] = [];
  const ticks: number[] = [];
  let waiting: (() => void) | undefined;
  worker.on('message', (m: Record<string, unknown>) => {
    if (typeof m.tick === 'number') return void ticks.push(m.tick);
    answers.push(m);
    waiting?.();
  });
  const next = async () => {
    while (answers.length === 0) await new Promise<void>((resolve) => (waiting = resolve));
    return answers.shift()!;
  };
  expect(await next()).toEqual({ ready: true });
  return { mailbox, worker, next, ticks };
}

const callMessage = (id: number, input: Uint8Array): ToThread => ({ type: 'call', id, key: 'k', entry: 'handle', args: [], input, notifyStart: false });

describe('thread mailbox', () => {
  it('order - a burst of calls (in the slot or through the port) and evicts arrives in the order posted, inputs whole', async () => {
    const t = await echoThread();
    const sent: { type: string; id: number; sum?: number }[] = [];
    for (let i = 0; i < 300; i++) {
      if (i % 3 === 0) {
        t.mailbox.post({ type: 'evict', key: 'k', snapshotId: i });
        sent.push({ type: 'evict', id: i });
        continue;
      }
      // Every fifth call too large for the slot; the others in the slot when it is free, else through the port.
      const input = new Uint8Array(i % 5 === 0 ? CALL_FRAME_BYTES + 1 : 1 + (i % 7) * 1000).fill(i % 5 || 1);
      const sum = input.reduce((s, b) => s + b, 0);
      t.mailbox.post(callMessage(i, input), [input.buffer]);
      // Through the port the bytes are moved (the sender's are gone); the first call found the slot free and was copied.
      if (input.length > CALL_FRAME_BYTES) expect(input.byteLength).toBe(0);
      if (i === 1) expect(input.byteLength).toBeGreaterThan(0);
      sent.push({ type: 'call', id: i, sum });
    }
    for (const s of sent) expect(await t.next()).toEqual({ sum: undefined, ...s });
  });

  it('wake - a thread asleep past its longest wait is woken by the next message, and by each after it', async () => {
    const t = await echoThread();
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, TEST_IDLE_WAIT_MS * 1.5));
      t.mailbox.post(callMessage(i, new Uint8Array([i])));
      expect(await t.next()).toEqual({ type: 'call', id: i, sum: i });
    }
  });

  it('event loop - timers in the thread fire while it sleeps, and a promise a message started settles before the next wait', async () => {
    const t = await echoThread(10);
    await new Promise((r) => setTimeout(r, TEST_IDLE_WAIT_MS * 5));
    // Asleep all along, with no message: the loop still had its turns (at least once per longest wait).
    expect(t.ticks.length).toBeGreaterThanOrEqual(2);
    t.mailbox.post({ type: 'tasks', id: 7, tasks: [] });
    expect(await t.next()).toEqual({ type: 'later', id: 7 });
  });

  it('idle work - a message that comes while steps are left waits for the step in progress only; the rest run after it', async () => {
    const gate = new Int32Array(new SharedArrayBuffer(12));
    const open = (steps: number) => {
      Atomics.store(gate, 0, steps);
      Atomics.notify(gate, 0);
    };
    /** Until gate[at] reaches n (the thread answers nothing meanwhile: it is in its steps). */
    const gateAt = async (at: number, n: number) => {
      for (const end = Date.now() + 10_000; Atomics.load(gate, at) < n; await new Promise((r) => setTimeout(r, 1))) {
        if (Date.now() > end) throw new Error(`gate[${at}] stayed at ${Atomics.load(gate, at)}, not ${n}`);
      }
    };
    const t = await echoThread(undefined, { idleSteps: 20, gate: gate.buffer as SharedArrayBuffer });
    t.mailbox.post(callMessage(1, new Uint8Array([1])));
    expect(await t.next()).toMatchObject({ id: 1, done: 0 });
    // Three steps finish; the message comes while the fourth is in progress, and is answered once it ends.
    open(3);
    await gateAt(1, 4);
    t.mailbox.post(callMessage(2, new Uint8Array([2])));
    open(1_000);
    expect(await t.next()).toMatchObject({ id: 2, done: 4 });
    // Then every step that message left runs, with no message to make room for.
    await gateAt(2, 24);
    t.mailbox.post(callMessage(3, new Uint8Array([3])));
    expect(await t.next()).toMatchObject({ id: 3, done: 24 });
  });

  it('polling - no more threads poll at once than the limit, and none once they idle', async () => {
    const spin: SpinLimits = { maxUs: 300, spinners: spinPlaces(1) };
    const place = new Int32Array(spin.spinners);
    const threads = await Promise.all([echoThread(undefined, { spin }), echoThread(undefined, { spin })]);
    const ids = new Set<number>();
    // Messages back to back: each thread's window grows, and both would poll between them; one place, held by one at a time.
    for (let i = 0; i < 300; i++) {
      for (const t of threads) t.mailbox.post(callMessage(i, new Uint8Array([1])));
      for (const t of threads) {
        ids.add(Atomics.load(place, 0));
        expect(await t.next()).toMatchObject({ id: i });
      }
    }
    const mailboxIds = threads.map((t) => t.mailbox.threadEnd.id);
    for (const id of ids) expect([0, ...mailboxIds]).toContain(id);
    await new Promise((r) => setTimeout(r, 20));
    expect(Atomics.load(place, 0)).toBe(0);
  });

  it('polling - a place a thread held when it was terminated is freed when its mailbox closes', async () => {
    const spin: SpinLimits = { maxUs: 300, spinners: spinPlaces(1) };
    const place = new Int32Array(spin.spinners);
    const t = await echoThread(undefined, { spin });
    // As if terminated while polling: the place still names it.
    Atomics.store(place, 0, t.mailbox.threadEnd.id);
    await t.worker.terminate();
    t.mailbox.close();
    expect(Atomics.load(place, 0)).toBe(0);
  });

  it('exit - a thread asleep in its mailbox is terminated', async () => {
    const t = await echoThread();
    const exited = once(t.worker, 'exit');
    await t.worker.terminate();
    expect((await exited)[0]).toBe(1);
  });

  it('closed - posting after the thread is gone throws nothing', async () => {
    const t = await echoThread();
    await t.worker.terminate();
    t.mailbox.close();
    expect(() => t.mailbox.post(callMessage(1, new Uint8Array(1)))).not.toThrow();
  });
});

describe('spin window', () => {
  it('its cap: FLURRY_GUEST_POLL_US when set (0: off), else 300 µs; anything but a whole number up to 1000 is refused', () => {
    expect(pollCapUs(undefined)).toBe(300);
    expect(pollCapUs('')).toBe(300);
    expect(pollCapUs('0')).toBe(0);
    expect(pollCapUs('120')).toBe(120);
    for (const bad of ['-1', '1001', '2.5', 'abc', '1e9']) expect(() => pollCapUs(bad)).toThrow(/FLURRY_GUEST_POLL_US/);
  });

  it('grows from nothing while messages come soon after the thread went idle, up to its cap, and keeps what catches them', () => {
    const w = new SpinWindow(300, 50);
    expect(w.us).toBe(0);
    const seen: number[] = [];
    for (let i = 0; i < 5; i++) {
      w.observe(120);
      seen.push(w.us);
    }
    expect(seen).toEqual([50, 100, 200, 200, 200]);
    for (let i = 0; i < 3; i++) w.observe(290);
    expect(w.us).toBe(300);
    w.observe(0);
    expect(w.us).toBe(300);
  });

  it('halves past the cap or with no message, to none below its start: a thread with nothing recent does not poll', () => {
    const w = new SpinWindow(300, 50);
    for (let i = 0; i < 4; i++) w.observe(250);
    expect(w.us).toBe(300);
    w.observe(Infinity);
    expect(w.us).toBe(150);
    w.observe(5000);
    expect(w.us).toBe(75);
    w.observe(Infinity);
    expect(w.us).toBe(0);
    w.observe(Infinity);
    expect(w.us).toBe(0);
    // A cap of 0: never.
    const off = new SpinWindow(0);
    off.observe(10);
    expect(off.us).toBe(0);
  });
});

const limits = { callTimeoutMs: 2000, initTimeoutMs: 5000, maxOutputBytes: 65536, maxLogLines: 16, maxLogBytes: 4096 };
const silent = createLogger('test', {}, 'silent');
const text = (b: Uint8Array) => new TextDecoder().decode(b);
const FAST = slowModule(0);
const call = (pool: GuestPool, key: string, n: number) => pool.handle(key, { method: 'POST', path: '/', query: '', headers: [], body: new Uint8Array(0) }, `call-${n}`);

describe('guest threads through their mailboxes', () => {
  it('order - calls sent before an evict run, calls after it find nothing', async () => {
    const pool = await GuestPool.start({ threads: 3, limits, log: silent });
    try {
      await pool.warm('k', FAST, new Uint8Array(0));
      // One call to each idle thread, posted at once; then the evict, to each of them.
      const before = [1, 2, 3].map((n) => call(pool, 'k', n));
      const evicted = pool.evict('k');
      expect((await Promise.all(before)).map((r) => text(r.body))).toEqual(['done', 'done', 'done']);
      await evicted;
      await expect(call(pool, 'k', 4)).rejects.toMatchObject({ code: 'not_found' });
    } finally {
      await pool.close(1000);
    }
  });

  it('order - a thread that replaces one past its time limit is sent the snapshots before its first call', async () => {
    const pool = await GuestPool.start({ threads: 1, limits, log: silent });
    try {
      await pool.warm('k', FAST, new Uint8Array(0));
      await pool.warm('slow', slowModule(60_000), new Uint8Array(0));
      await expect(call(pool, 'slow', 1)).rejects.toMatchObject({ code: 'timeout' });
      expect(text((await call(pool, 'k', 2)).body)).toBe('done');
    } finally {
      await pool.close(1000);
    }
  });

  it('busy then idle - threads answer a burst, sleep past their longest wait, then answer again', async () => {
    const pool = await GuestPool.start({ threads: 2, limits, log: silent });
    try {
      await pool.warm('k', FAST, new Uint8Array(0));
      const burst = await Promise.all(Array.from({ length: 50 }, (_, n) => call(pool, 'k', n)));
      expect(burst.every((r) => text(r.body) === 'done')).toBe(true);
      await new Promise((r) => setTimeout(r, IDLE_WAIT_MS * 1.2));
      expect(text((await call(pool, 'k', 50)).body)).toBe('done');
    } finally {
      await pool.close(1000);
    }
  });
});
