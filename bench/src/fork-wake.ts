/**
 * How long a call message takes to reach an idle thread, three ways,
 * alternated in one run, each after a pause (as a fork after an idle spell):
 *   message    `postMessage` of a call-shaped object (its input transferred)
 *              to a thread idle in its event loop: how guest threads took
 *              calls before their mailbox (thread-mailbox.ts)
 *   doorbell   the same message read with `receiveMessageOnPort` by a thread
 *              blocked in `Atomics.wait` on a SharedArrayBuffer the sender
 *              rings after posting: skips libuv and Node's dispatch, not the
 *              structured clone; how guest threads take messages other than calls
 *   mailbox    no message: the call's fields and input written into a
 *              SharedArrayBuffer, the blocked thread woken by Atomics.notify
 *              and reading them in place: no structured clone at either end;
 *              how guest threads take calls (call-frame.ts)
 * Timed from before the sender's first step to the thread's first step.
 */
import { MessageChannel, Worker } from 'node:worker_threads';
import { round, summarize } from './stats.js';

const THREAD = `
const { parentPort, workerData, receiveMessageOnPort } = require('node:worker_threads');
const { port, doorbell, mailbox } = workerData;
const answer = (m) => parentPort.postMessage({ sent: m.sent, at: performance.timeOrigin + performance.now() });
if (mailbox) {
  const ctl = new Int32Array(mailbox, 0, 4);
  const sent = new Float64Array(mailbox, 16, 1);
  const bytes = new Uint8Array(mailbox, 64);
  const text = new TextDecoder();
  for (;;) {
    Atomics.wait(ctl, 0, 0);
    const at = performance.timeOrigin + performance.now();
    if (Atomics.load(ctl, 0) === 2) process.exit(0);
    // The call's fields, read in place: input length, key length, then the bytes.
    const input = bytes.slice(0, ctl[1]);
    const key = text.decode(bytes.subarray(ctl[1], ctl[1] + ctl[2]));
    Atomics.store(ctl, 0, 0);
    parentPort.postMessage({ sent: sent[0], at, key, n: input.length });
  }
} else if (!doorbell) port.on('message', answer);
else {
  const bell = new Int32Array(doorbell);
  let seen = 0;
  for (;;) {
    Atomics.wait(bell, 0, seen);
    seen = Atomics.load(bell, 0);
    for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) {
      if (m.message.stop) process.exit(0);
      answer(m.message);
    }
  }
}`;

interface Thread {
  send(): Promise<number>;
  stop(): Promise<void>;
}

type Way = 'message' | 'doorbell' | 'mailbox';

function startThread(way: Way): Thread {
  const { port1, port2 } = new MessageChannel();
  const bellBuffer = new SharedArrayBuffer(4);
  const bell = new Int32Array(bellBuffer);
  const doorbell = way === 'doorbell';
  const box = new SharedArrayBuffer(4096);
  const ctl = new Int32Array(box, 0, 4);
  const sentAt = new Float64Array(box, 16, 1);
  const bytes = new Uint8Array(box, 64);
  const text = new TextEncoder();
  const worker = new Worker(THREAD, { eval: true, workerData: { port: port2, doorbell: doorbell ? bellBuffer : undefined, mailbox: way === 'mailbox' ? box : undefined }, transferList: [port2] });
  let waiting: ((ms: number) => void) | undefined;
  worker.on('message', (m: { sent: number; at: number }) => waiting?.(m.at - m.sent));
  const post = (message: unknown, transfer: ArrayBuffer[] = []) => {
    port1.postMessage(message, transfer);
    if (doorbell) {
      Atomics.add(bell, 0, 1);
      Atomics.notify(bell, 0);
    }
  };
  return {
    send: () => new Promise<number>((resolve) => {
      waiting = resolve;
      const sent = performance.timeOrigin + performance.now();
      const input = new Uint8Array(64);
      if (way === 'mailbox') {
        sentAt[0] = sent;
        bytes.set(input, 0);
        ctl[1] = input.length;
        ctl[2] = text.encodeInto('pattern-a', bytes.subarray(input.length)).written;
        Atomics.store(ctl, 0, 1);
        Atomics.notify(ctl, 0);
        return;
      }
      // What a guest thread's call message is: a small object, its input transferred.
      post({ type: 'call', id: 1, key: 'pattern-a', entry: 'run', args: [0, 1], input, notifyStart: true, sent }, [input.buffer]);
    }),
    stop: async () => {
      if (way === 'mailbox') {
        Atomics.store(ctl, 0, 2);
        Atomics.notify(ctl, 0);
      } else post({ stop: true });
      port1.close();
      await worker.terminate();
    },
  };
}

export interface WakeFigures {
  messageP50Us: number;
  messageP90Us: number;
  doorbellP50Us: number;
  doorbellP90Us: number;
  mailboxP50Us: number;
  mailboxP90Us: number;
  samples: number;
}

export async function probeThreadWake(rounds = 40, pauseMs = 20): Promise<WakeFigures> {
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const ways: Way[] = ['message', 'doorbell', 'mailbox'];
  const threads = ways.map(startThread);
  const times: number[][] = ways.map(() => []);
  try {
    await pause(100);
    for (let i = 0; i < rounds; i++) {
      for (let w = 0; w < ways.length; w++) {
        await pause(pauseMs);
        times[w].push(await threads[w].send());
      }
    }
  } finally {
    await Promise.all(threads.map((t) => t.stop()));
  }
  const [sm, sd, sx] = times.map(summarize);
  const us = (ms: number) => round(ms * 1000, 1);
  return { messageP50Us: us(sm.p50Ms), messageP90Us: us(sm.p90Ms), doorbellP50Us: us(sd.p50Ms), doorbellP90Us: us(sd.p90Ms), mailboxP50Us: us(sx.p50Ms), mailboxP90Us: us(sx.p90Ms), samples: rounds };
}
