/**
 * Direct replies (reply-lines.ts) with real parts: a guest pool on the native pager running the echo and
 * big-output guests, the host's call channel listener, and a peer speaking the channel's protocol over TCP.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createServer, connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callPayload, createLogger, decode, encode, encodeFrame, FrameReader, FrameType, type Frame, type InvokeReply, type InvokeRequest } from '@flurry/core';
import { CallChannels } from './call-channels.js';
import { GuestPool } from './guest/guest-pool.js';
import { nativePagerStatus, loadNativePager } from './native/pager.js';
import { ReplyLines, ReplyWriter, type Replied } from './reply-lines.js';

const BUILD = new URL('../../functions/build/', import.meta.url);
const MiB = 1024 * 1024;
const MAX_FRAME = 2 * MiB;
const native = nativePagerStatus().copyOnWrite;
const built = existsSync(new URL('echo.wasm', BUILD)) && existsSync(new URL('big-output.wasm', BUILD));
if (!native) console.warn(`reply-lines.test.ts skipped: the native pager does not work here (${nativePagerStatus().reason})`);
if (!built) console.warn('reply-lines.test.ts skipped: functions/build lacks echo.wasm or big-output.wasm (node functions/build.mjs)');

const program = (name: string) => new Uint8Array(readFileSync(new URL(`${name}.wasm`, BUILD)));
const request = (over: Partial<InvokeRequest> = {}): InvokeRequest => ({
  requestId: 'r', tenant: 't', name: 'echo', digest: 'd', method: 'POST', path: '/', query: '', headers: [], body: new Uint8Array(0), ...over,
});

/** The gateway's end: what it receives, frame by frame. */
class Peer {
  readonly frames: Frame[] = [];
  closed = false;
  private readonly reader = new FrameReader(MAX_FRAME * 2);
  private readonly waiters: (() => void)[] = [];

  constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.frames.push(...this.reader.push(chunk));
      this.wake();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  async until(frames: number): Promise<void> {
    while (this.frames.length < frames && !this.closed) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}

describe.skipIf(!native || !built)('direct replies', () => {
  let pool: GuestPool;
  let channels: CallChannels;
  let port: number;
  let token: Uint8Array;
  /** How each call taken was answered: by the guest thread (its rest's length) or by the main thread. */
  const answers: ('thread' | 'cut' | 'main')[] = [];

  beforeAll(async () => {
    const limits = { callTimeoutMs: 5000, initTimeoutMs: 30_000, maxOutputBytes: 4 * MiB, maxLogLines: 64, maxLogBytes: 65536 };
    pool = await GuestPool.start({ threads: 2, limits, log: createLogger('test', {}, 'silent'), pager: 'native' });
    await pool.warm('echo', program('echo'));
    await pool.warm('big-output', program('big-output'));
    expect(pool.replyLines).toBeDefined();
    channels = await CallChannels.start({
      hostId: 'h1', listen: { host: '127.0.0.1', port: 0 }, maxFrameBytes: MAX_FRAME, log: createLogger('test', {}, 'silent'), lines: pool.replyLines,
      take: (req, _trace, direct) => {
        if (req.name === 'other') return undefined;
        const answer = pool.handle(req.name, req, req.requestId, {}, direct).then((r): InvokeReply | Replied => {
          if (r.replied) return { replied: r.replied };
          return { ok: true, status: r.status, headers: r.headers, body: r.body, hostId: 'h1', durationMs: r.durationMs };
        });
        void answer.then((a) => answers.push(!('replied' in a) ? 'main' : a.replied.length > 0 ? 'cut' : 'thread'), () => answers.push('main'));
        return answer;
      },
    });
    token = randomBytes(32);
    const granted = channels.grant(token);
    if (!granted.ok) throw new Error('not granted');
    port = granted.port;
  });
  afterAll(async () => {
    channels?.close();
    await pool?.close();
  });

  async function welcomed(): Promise<Peer> {
    const socket = connect({ host: '127.0.0.1', port });
    await new Promise((resolve) => socket.once('connect', resolve));
    const peer = new Peer(socket);
    socket.write(encodeFrame(FrameType.hello, 0, token));
    await peer.until(1);
    expect(peer.frames[0]).toMatchObject({ type: FrameType.welcome });
    return peer;
  }

  const call = (id: number, req: InvokeRequest) => encodeFrame(FrameType.call, id, callPayload('', encode(req)));

  it('a call\'s reply is written by the guest thread that ran it, whole, with the call\'s id', async () => {
    answers.length = 0;
    const peer = await welcomed();
    peer.socket.write(call(7, request({ body: new TextEncoder().encode('hello'), query: 'x=1' })));
    await peer.until(2);
    expect(peer.frames[1]).toMatchObject({ type: FrameType.reply, id: 7 });
    const reply = decode(peer.frames[1]!.payload) as Extract<InvokeReply, { ok: true }>;
    expect(reply).toMatchObject({ ok: true, status: 200, hostId: 'h1', headers: [['content-type', 'application/json']] });
    expect(JSON.parse(new TextDecoder().decode(reply.body))).toMatchObject({ method: 'POST', query: 'x=1', body: 'hello' });
    while (answers.length < 1) await new Promise((resolve) => setImmediate(resolve));
    expect(answers).toEqual(['thread']);
    peer.socket.destroy();
  });

  it('many calls at once, beside the main thread\'s own frames (declines, refusals): every frame whole, each id answered once', async () => {
    answers.length = 0;
    const peer = await welcomed();
    const N = 300;
    const kinds = new Map<number, string>();
    for (let id = 1; id <= N; id++) {
      const kind = id % 10 === 3 ? 'declined' : id % 10 === 6 ? 'refused' : 'echo';
      kinds.set(id, kind);
      if (kind === 'declined') peer.socket.write(call(id, request({ name: 'other' })));
      else if (kind === 'refused') peer.socket.write(encodeFrame(FrameType.call, id, callPayload('', encode({ ...request(), body: 'not bytes' }))));
      else peer.socket.write(call(id, request({ body: new TextEncoder().encode(`call ${id}`) })));
    }
    await peer.until(N + 1);
    expect(peer.closed).toBe(false);
    const seen = new Set<number>();
    for (const frame of peer.frames.slice(1)) {
      expect(seen.has(frame.id)).toBe(false);
      seen.add(frame.id);
      const kind = kinds.get(frame.id);
      if (kind === 'declined') expect(frame.type).toBe(FrameType.declined);
      else if (kind === 'refused') expect(decode(frame.payload)).toMatchObject({ ok: false, error: { code: 'bad_request' } });
      else {
        const reply = decode(frame.payload) as Extract<InvokeReply, { ok: true }>;
        expect(JSON.parse(new TextDecoder().decode(reply.body))).toMatchObject({ body: `call ${frame.id}` });
      }
    }
    expect(seen.size).toBe(N);
    // Most calls' replies left from their guest threads (a busy line leaves some to the main thread).
    expect(answers.filter((a) => a === 'thread').length).toBeGreaterThan(0);
    peer.socket.destroy();
  });

  it('replies larger than the socket takes at once (the gateway not reading): their rests written by the main thread, no frame cut by another', async () => {
    answers.length = 0;
    const peer = await welcomed();
    peer.socket.pause();
    const N = 24;
    for (let id = 1; id <= N; id++) {
      peer.socket.write(call(id, request({ name: id % 2 === 0 ? 'big-output' : 'echo', query: `bytes=${MiB + id}`, body: new TextEncoder().encode(`call ${id}`) })));
    }
    // Every call is answered (some of them cut) before the peer reads anything.
    while (answers.length < N) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(answers).toContain('cut');
    peer.socket.resume();
    await peer.until(N + 1);
    for (const frame of peer.frames.slice(1)) {
      const reply = decode(frame.payload) as Extract<InvokeReply, { ok: true }>;
      expect(reply.ok).toBe(true);
      if (frame.id % 2 === 0) expect(reply.body.length).toBe(MiB + frame.id);
      else expect(JSON.parse(new TextDecoder().decode(reply.body))).toMatchObject({ body: `call ${frame.id}` });
    }
    expect(new Set(peer.frames.slice(1).map((f) => f.id)).size).toBe(N);
    peer.socket.destroy();
  });
});

describe.skipIf(!native)('reply lines', () => {
  it('a thread gone while it held a line (its frame cut) closes that channel; a stale generation writes nothing', async () => {
    const pager = loadNativePager();
    const lines = new ReplyLines(pager);
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
    const client = connect({ host: '127.0.0.1', port: (server.address() as { port: number }).port });
    client.pause();
    const socket = await accepted;
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    const line = lines.open(socket)!;
    expect(line).toBeDefined();
    const writer = new ReplyWriter(lines.table, pager, 7);
    const target = line.target(1, 'h1', 64 * MiB);
    expect(writer.write({ ...target, generation: target.generation + 1 }, new Uint8Array(10))).toBe(0);
    // The client reads nothing: the socket's buffer fills, and a write is taken in part.
    const frame = new Uint8Array(4 * MiB);
    let sent = 0;
    for (let i = 0; i < 64 && (sent === 0 || sent === frame.length); i++) sent = writer.write(target, frame);
    expect(sent).toBeGreaterThan(0);
    expect(sent).toBeLessThan(frame.length);
    // Cut: nobody else may write to the line now, the main thread's frames wait for the rest.
    expect(new ReplyWriter(lines.table, pager, 8).write(target, new Uint8Array(10))).toBe(0);
    lines.threadGone(8);
    expect(socket.destroyed).toBe(false);
    lines.threadGone(7);
    await closed;
    client.destroy();
    server.close();
  });
});
