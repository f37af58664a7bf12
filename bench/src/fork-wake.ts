/**
 * How long a message takes to reach an idle thread, two ways, alternated in
 * one run: `postMessage` to a thread idle in its event loop (how guest
 * threads take calls), and the same message read with
 * `receiveMessageOnPort` by a thread blocked in `Atomics.wait` on a
 * SharedArrayBuffer doorbell the sender rings after posting (the thread
 * skips libuv and Node's message dispatch, not the wake-up itself). Each
 * message follows a pause, as a fork after an idle spell does.
 */
import { MessageChannel, Worker } from 'node:worker_threads';
import { round, summarize } from './stats.js';

const THREAD = `
const { parentPort, workerData, receiveMessageOnPort } = require('node:worker_threads');
const { port, doorbell } = workerData;
const answer = (m) => parentPort.postMessage({ sent: m.sent, at: performance.timeOrigin + performance.now() });
if (!doorbell) port.on('message', answer);
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

function startThread(doorbell: boolean): Thread {
  const { port1, port2 } = new MessageChannel();
  const bellBuffer = new SharedArrayBuffer(4);
  const bell = new Int32Array(bellBuffer);
  const worker = new Worker(THREAD, { eval: true, workerData: { port: port2, doorbell: doorbell ? bellBuffer : undefined }, transferList: [port2] });
  let waiting: ((ms: number) => void) | undefined;
  worker.on('message', (m: { sent: number; at: number }) => waiting?.(m.at - m.sent));
  const post = (message: unknown) => {
    port1.postMessage(message);
    if (doorbell) {
      Atomics.add(bell, 0, 1);
      Atomics.notify(bell, 0);
    }
  };
  return {
    send: () => new Promise<number>((resolve) => {
      waiting = resolve;
      // The same kind of payload as a call: a small object with an input buffer.
      post({ sent: performance.timeOrigin + performance.now(), input: new Uint8Array(64) });
    }),
    stop: async () => {
      post({ stop: true });
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
  samples: number;
}

export async function probeThreadWake(rounds = 40, pauseMs = 20): Promise<WakeFigures> {
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const message = startThread(false);
  const doorbell = startThread(true);
  const m: number[] = [];
  const d: number[] = [];
  try {
    await pause(100);
    for (let i = 0; i < rounds; i++) {
      await pause(pauseMs);
      m.push(await message.send());
      await pause(pauseMs);
      d.push(await doorbell.send());
    }
  } finally {
    await Promise.all([message.stop(), doorbell.stop()]);
  }
  const sm = summarize(m);
  const sd = summarize(d);
  return { messageP50Us: round(sm.p50Ms * 1000, 1), messageP90Us: round(sm.p90Ms * 1000, 1), doorbellP50Us: round(sd.p50Ms * 1000, 1), doorbellP90Us: round(sd.p90Ms * 1000, 1), samples: rounds };
}
