/**
 * Call threads that read their own calls (thread-channel.ts), with real threads and sockets: the token and frame
 * checks, declines, answers, the main thread's watchdog over a guest past its limit, busy and free around work from
 * the host, logs and use reaching the main thread.
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, decode, encode, encodeCallFrame, encodeFrame, FrameReader, FrameType, type Frame, type InvokeReply, type InvokeRequest } from '@flurry/core';
import { wat } from '../../../test/helpers/wat.js';
import { GuestPool, type ChannelLogs, type GuestLimits } from './guest-pool.js';
import { tokenDigest } from './thread-call-cells.js';

const silent = createLogger('test', {}, 'silent');
const MAX_FRAME = 1 << 20;
const HOST = 'host-threads';

const IO = `
  (import "flurry" "input_size" (func $input_size (result i32)))
  (import "flurry" "input_read" (func $input_read (param i32 i32 i32) (result i32)))
  (import "flurry" "output_write" (func $out (param i32 i32)))
  (import "flurry" "log" (func $log (param i32 i32 i32)))`;

/** handle echoes its input; first byte l: loops forever; g: logs "hello" first; w: spins a while (about 0.1–1 s). run (a job's clone) spins a while and answers "ran". */
const GUEST = wat(`(module ${IO}
  (memory (export "memory") 1 16)
  (data (i32.const 0) "hello")
  (func (export "handle") (result i32)
    (local $n i32) (local $i i32)
    (local.set $n (call $input_size))
    (drop (call $input_read (i32.const 1024) (local.get $n) (i32.const 0)))
    (if (i32.eq (i32.load8_u (i32.const 1024)) (i32.const 108)) (then (loop $forever (br $forever))))
    (if (i32.eq (i32.load8_u (i32.const 1024)) (i32.const 103)) (then (call $log (i32.const 1) (i32.const 0) (i32.const 5))))
    (if (i32.eq (i32.load8_u (i32.const 1024)) (i32.const 119))
      (then (loop $more
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $more (i32.lt_u (local.get $i) (i32.const 200000000))))))
    (call $out (i32.const 1024) (local.get $n))
    (i32.const 0))
  (func (export "run") (param i32 i32) (result i32)
    (local $i i32)
    (loop $more
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $more (i32.lt_u (local.get $i) (i32.const 200000000))))
    (i32.store (i32.const 0) (i32.const 0x006e6172))
    (call $out (i32.const 0) (i32.const 3))
    (i32.const 0)))`);

const limits: GuestLimits = { callTimeoutMs: 5000, initTimeoutMs: 10_000, maxOutputBytes: 4096, maxLogLines: 64, maxLogBytes: 65536 };
const KEY = 't1.fn@d1';
const token = randomBytes(32);
let pool: GuestPool;
const logs: ChannelLogs[] = [];

beforeAll(async () => {
  pool = await GuestPool.start({ threads: 2, limits, log: silent, threadChannels: { listenHost: '127.0.0.1', hostId: HOST, maxFrameBytes: MAX_FRAME } });
  pool.onChannelLogs((l) => logs.push(l));
  await pool.warm(KEY, GUEST);
  pool.setServed(KEY, true);
  pool.grantToken(tokenDigest(token));
});

afterAll(async () => {
  await pool.close(0);
});

const request = (body: string, extra: Partial<InvokeRequest> = {}): InvokeRequest => ({
  requestId: 'req-1', tenant: 't1', name: 'fn', digest: 'd1', method: 'POST', path: '/', query: '', headers: [], body: new TextEncoder().encode(body), ...extra,
});

/** A connection to a thread's port: the frames it got, and a way to wait for the next ones or its close. */
class Client {
  readonly frames: Frame[] = [];
  closed = false;
  private waiters: (() => void)[] = [];

  constructor(readonly socket: Socket) {
    const reader = new FrameReader(MAX_FRAME);
    socket.on('data', (chunk: Buffer) => {
      for (const f of reader.push(chunk)) this.frames.push(f);
      this.wake();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  static async open(port: number, say: Uint8Array | null = token): Promise<Client> {
    const socket = connect({ host: '127.0.0.1', port, noDelay: true });
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const client = new Client(socket);
    if (say) socket.write(encodeFrame(FrameType.hello, 0, say));
    return client;
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Resolves once `done` holds (checked after every frame and at the close); rejects if the socket closed first without it. */
  until<T>(done: () => T | undefined): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const v = done();
        if (v !== undefined) return resolve(v);
        if (this.closed) return reject(new Error(`closed; frames: ${this.frames.map((f) => f.type).join(',')}`));
        this.waiters.push(check);
      };
      check();
    });
  }

  /** Sends a call and resolves with its answer frame. */
  async call(id: number, payload: Uint8Array): Promise<Frame> {
    this.socket.write(encodeCallFrame(id, '', payload));
    return this.until(() => this.frames.find((f) => f.id === id && (f.type === FrameType.reply || f.type === FrameType.declined)));
  }

  /** True once the socket closed; false if it is still open after `ms` (the thread did not close it). */
  closedAfter(ms = 3000): Promise<boolean> {
    if (this.closed) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      this.socket.once('close', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }
}

const reply = (f: Frame) => decode<InvokeReply>(f.payload);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

describe('call threads reading their own calls', () => {
  it('ports - every call thread listens on a port of its own', () => {
    const ports = pool.threadPorts();
    expect(ports).toHaveLength(2);
    expect(new Set(ports).size).toBe(2);
  });

  it('token - a connection without a granted token is closed with no welcome; one with it is welcomed with the host id', async () => {
    const [port] = pool.threadPorts();
    const bad = await Client.open(port!, randomBytes(32));
    expect(await bad.closedAfter()).toBe(true);
    expect(bad.frames).toEqual([]);
    const good = await Client.open(port!);
    const welcome = await good.until(() => good.frames.find((f) => f.type === FrameType.welcome));
    expect(text(welcome.payload)).toBe(HOST);
    good.socket.destroy();
  });

  it('bad frames - a call before the hello, a second hello and a frame over the size limit each close the connection', async () => {
    const [port] = pool.threadPorts();
    const early = await Client.open(port!, null);
    early.socket.write(encodeCallFrame(1, '', encode(request('x'))));
    expect(await early.closedAfter()).toBe(true);
    expect(early.frames).toEqual([]);

    const twice = await Client.open(port!);
    await twice.until(() => twice.frames.find((f) => f.type === FrameType.welcome));
    twice.socket.write(encodeFrame(FrameType.hello, 0, token));
    expect(await twice.closedAfter()).toBe(true);

    const huge = await Client.open(port!);
    await huge.until(() => huge.frames.find((f) => f.type === FrameType.welcome));
    const head = Buffer.alloc(9);
    head.writeUInt32BE(MAX_FRAME + 1, 0);
    head[4] = FrameType.call;
    huge.socket.write(head);
    expect(await huge.closedAfter()).toBe(true);
  });

  it('declines - a payload that is not a call, an unknown version and a version not served are declined; the connection stays', async () => {
    const [port] = pool.threadPorts();
    const c = await Client.open(port!);
    await c.until(() => c.frames.find((f) => f.type === FrameType.welcome));
    expect((await c.call(1, new Uint8Array([200]))).type).toBe(FrameType.declined);
    expect((await c.call(2, new Uint8Array([0, 0xc1, 0xc1]))).type).toBe(FrameType.declined);
    expect((await c.call(3, encode({ ...request('x'), headers: 'not pairs' }))).type).toBe(FrameType.declined);
    expect((await c.call(4, encode(request('x', { digest: 'other' })))).type).toBe(FrameType.declined);
    pool.setServed(KEY, false);
    try {
      expect((await c.call(5, encode(request('x')))).type).toBe(FrameType.declined);
    } finally {
      pool.setServed(KEY, true);
    }
    const answered = await c.call(6, encode(request('after')));
    expect(answered.type).toBe(FrameType.reply);
    expect(text((reply(answered) as { body: Uint8Array }).body)).toBe('after');
    c.socket.destroy();
  });

  it('answers - calls sent together on one connection are each answered with their own body, in a fresh clone each', async () => {
    const [port] = pool.threadPorts();
    const c = await Client.open(port!);
    await c.until(() => c.frames.find((f) => f.type === FrameType.welcome));
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => c.call(100 + i, encode(request(`body ${i}`)))));
    expect(answers.map((f) => f.type)).toEqual(Array(20).fill(FrameType.reply));
    expect(answers.map((f) => { const r = reply(f); return r.ok ? `${text(r.body)} ${r.hostId}` : r.error.message; })).toEqual(Array.from({ length: 20 }, (_, i) => `body ${i} ${HOST}`));
    const use = pool.ownCalls(KEY);
    expect(use.running).toBe(0);
    expect(use.lastEnded).toBeGreaterThan(0);
    c.socket.destroy();
  });

  it('logs - what a call logged reaches the main thread once, with its request id', async () => {
    const [port] = pool.threadPorts();
    const c = await Client.open(port!);
    await c.until(() => c.frames.find((f) => f.type === FrameType.welcome));
    const before = logs.length;
    const answer = await c.call(1, encode(request('g-log', { requestId: 'req-logs' })));
    expect(answer.type).toBe(FrameType.reply);
    await expect.poll(() => logs.length).toBe(before + 1);
    expect(logs.at(-1)).toMatchObject({ key: KEY, requestId: 'req-logs', tenant: 't1', name: 'fn', droppedLogLines: 0 });
    expect(logs.at(-1)!.logs.map((l) => l.message)).toEqual(['hello']);
    c.socket.destroy();
  });

  it('busy and free - a thread given a job\'s clone by its host says busy on its connections, then free, then answers what came meanwhile', async () => {
    const clients = await Promise.all(pool.threadPorts().map((p) => Client.open(p)));
    await Promise.all(clients.map((c) => c.until(() => c.frames.find((f) => f.type === FrameType.welcome))));
    const hostCall = pool.run(KEY, 0, 1, new Uint8Array(0), 'req-clone');
    const busy = await Promise.race(clients.map((c) => c.until(() => c.frames.find((f) => f.type === FrameType.busy) && c)));
    // Sent while the thread runs its host's call: read once that call is done, after the thread said free.
    const meanwhile = busy.call(7, encode(request('x meanwhile')));
    const result = await hostCall;
    expect(text(result.body)).toBe('ran');
    const answer = await meanwhile;
    const types = busy.frames.map((f) => f.type).filter((t) => t !== FrameType.welcome);
    expect(types).toEqual([FrameType.busy, FrameType.free, FrameType.reply]);
    expect(busy.frames.find((f) => f.type === FrameType.free)!.id).toBe(0);
    expect(text((reply(answer) as { body: Uint8Array }).body)).toBe('x meanwhile');
    for (const c of clients) c.socket.destroy();
  });

  it('busy and free - a function call from the host\'s queue says nothing on the connections (as short as theirs)', async () => {
    const clients = await Promise.all(pool.threadPorts().map((p) => Client.open(p)));
    await Promise.all(clients.map((c) => c.until(() => c.frames.find((f) => f.type === FrameType.welcome))));
    const result = await pool.handle(KEY, { method: 'POST', path: '/', query: '', headers: [], body: new TextEncoder().encode('from the queue') }, 'req-queue');
    expect(text(result.body)).toBe('from the queue');
    // A call on each connection after it: each answered, and nothing but the welcome came before its answer.
    const answers = await Promise.all(clients.map((c, i) => c.call(20 + i, encode(request(`after ${i}`)))));
    expect(answers.map((a) => a.type)).toEqual([FrameType.reply, FrameType.reply]);
    expect(clients.map((c) => c.frames.map((f) => f.type))).toEqual([[FrameType.welcome, FrameType.reply], [FrameType.welcome, FrameType.reply]]);
    for (const c of clients) c.socket.destroy();
  });

  it('time limit - a guest past its limit is answered timeout once by the host, its connection closes, its thread is replaced', async () => {
    const [port] = pool.threadPorts();
    const c = await Client.open(port!);
    await c.until(() => c.frames.find((f) => f.type === FrameType.welcome));
    c.socket.write(encodeCallFrame(9, '', encode(request('loop', { limits: { timeoutMs: 300 } }))));
    expect(await c.closedAfter(10_000)).toBe(true);
    const answers = c.frames.filter((f) => f.type === FrameType.reply || f.type === FrameType.declined);
    expect(answers).toHaveLength(1);
    expect(answers[0]!.id).toBe(9);
    const r = reply(answers[0]!);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toEqual({ code: 'timeout', message: 'call exceeded 300 ms' });
    // Followed by busy: the gateway sends nothing more to it while its thread is ended.
    expect(c.frames.map((f) => f.type).slice(-2)).toEqual([FrameType.reply, FrameType.busy]);
    expect(pool.ownCalls(KEY).running).toBe(0);
    // A replacement listens on a new port; the pool still runs calls from its host.
    await expect.poll(() => pool.threadPorts().length, { timeout: 10_000 }).toBe(2);
    expect(pool.threadPorts()).not.toContain(port);
    const after = await pool.handle(KEY, { method: 'POST', path: '/', query: '', headers: [], body: new TextEncoder().encode('still') }, 'req-after');
    expect(text(after.body)).toBe('still');
    const fresh = await Client.open(pool.threadPorts().find((p) => p !== port)!);
    await fresh.until(() => fresh.frames.find((f) => f.type === FrameType.welcome));
    expect((await fresh.call(10, encode(request('fresh')))).type).toBe(FrameType.reply);
    fresh.socket.destroy();
  });
});
