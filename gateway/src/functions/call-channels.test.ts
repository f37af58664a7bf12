/** A call channel's calls against a host end that answers some calls and not others: time limits on one timer, late answers, a closed socket. */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { CallFailed, encodeFrame, FrameReader, FrameType, type Frame } from '@flurry/core';
import { CallChannel, ChannelClosed } from './call-channels.js';

const MAX_FRAME = 1 << 20;
let server: Server | undefined;
let client: Socket | undefined;
const extra: { server: Server; socket: Socket }[] = [];

/** A channel to a host end that hands each call frame to `onCall` (which may answer on `host`). */
async function channel(onCall: (frame: Frame, host: Socket) => void): Promise<CallChannel> {
  server = createServer((host) => {
    const reader = new FrameReader(MAX_FRAME);
    host.on('data', (chunk: Buffer) => {
      for (const frame of reader.push(chunk)) onCall(frame, host);
    });
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  client = connect({ host: '127.0.0.1', port });
  await new Promise<void>((resolve) => client!.once('connect', resolve));
  const c = new CallChannel('host-1', 1, client, MAX_FRAME);
  // As CallChannels wires an open channel: answers to `answer`, a close to `failAll`.
  const answers = new FrameReader(MAX_FRAME);
  client.on('data', (chunk: Buffer) => {
    for (const frame of answers.push(chunk)) c.answer(frame);
  });
  client.on('close', () => c.failAll('closed'));
  return c;
}

const answer = (host: Socket, id: number, text: string) => host.write(encodeFrame(FrameType.reply, id, new TextEncoder().encode(text)));
const request = new Uint8Array([1, 2, 3]);

afterEach(() => {
  client?.destroy();
  server?.close();
  for (const e of extra.splice(0)) {
    e.socket.destroy();
    e.server.close();
  }
});

/**
 * A thread connection added to `c`, to a thread end that hands each call frame to `onCall`, wired as CallChannels
 * wires one (frames to the link, its close to `closed`); `end` is the thread's side of the socket.
 */
async function thread(c: CallChannel, onCall: (frame: Frame, end: Socket) => void): Promise<{ port: number; end: () => Socket }> {
  let end: Socket | undefined;
  const s = createServer((sock) => {
    end = sock;
    const reader = new FrameReader(MAX_FRAME);
    sock.on('data', (chunk: Buffer) => {
      for (const frame of reader.push(chunk)) onCall(frame, sock);
    });
  });
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as { port: number };
  const socket = connect({ host: '127.0.0.1', port });
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  extra.push({ server: s, socket });
  const link = c.addThread(socket, port);
  const frames = new FrameReader(MAX_FRAME);
  socket.on('data', (chunk: Buffer) => {
    for (const frame of frames.push(chunk)) if (!link.frame(frame)) socket.destroy();
  });
  socket.on('close', () => link.closed());
  await until(() => end);
  return { port, end: () => end! };
}

async function until<T>(get: () => T | undefined): Promise<T> {
  for (let i = 0; i < 500; i++) {
    const v = get();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error('not in time');
}

describe('CallChannel', () => {
  it('time limit - a call not answered in time fails with timeout, while the calls answered beside it resolve', async () => {
    const c = await channel((frame, host) => {
      const n = frame.payload[frame.payload.length - 1]!;
      // Requests ending in 0 are never answered.
      if (n !== 0) answer(host, frame.id, `answer ${n}`);
    });
    const lost = c.call(new Uint8Array([0]), '', 30);
    const answered = await Promise.all([1, 2, 3].map((n) => c.call(new Uint8Array([n]), '', 10_000)));
    expect(answered.map((a) => new TextDecoder().decode(a))).toEqual(['answer 1', 'answer 2', 'answer 3']);
    const err = await lost.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CallFailed);
    expect((err as CallFailed).code).toBe('timeout');
    expect(c.load).toBe(0);
  });

  it('time limit - limits of different lengths each end their own call, a shorter one asked after a longer one included', async () => {
    const c = await channel(() => undefined);
    const order: string[] = [];
    const long = c.call(request, '', 200).catch(() => order.push('long'));
    const short = c.call(request, '', 20).catch(() => order.push('short'));
    await Promise.all([long, short]);
    expect(order).toEqual(['short', 'long']);
  });

  it('late answer - an answer after its call timed out is dropped, and the channel goes on', async () => {
    let held: { id: number; host: Socket } | undefined;
    const c = await channel((frame, host) => {
      if (!held) held = { id: frame.id, host };
      else answer(host, frame.id, 'next');
    });
    await expect(c.call(request, '', 20)).rejects.toBeInstanceOf(CallFailed);
    answer(held!.host, held!.id, 'too late');
    expect(new TextDecoder().decode(await c.call(request, '', 10_000))).toBe('next');
  });

  it('closed - calls in flight fail with ChannelClosed, and a call after the close fails at once', async () => {
    const c = await channel(() => undefined);
    const inFlight = c.call(request, '', 10_000);
    c.close();
    await expect(inFlight).rejects.toBeInstanceOf(ChannelClosed);
    await expect(c.call(request, '', 10_000)).rejects.toBeInstanceOf(ChannelClosed);
  });

  it('threads - calls go to the thread connection with the fewest in flight, several on each, the host connection unused', async () => {
    const seen: string[] = [];
    const c = await channel((frame, host) => {
      seen.push('host');
      answer(host, frame.id, 'from host');
    });
    const held: { id: number; end: Socket; who: string }[] = [];
    const t1 = await thread(c, (frame, end) => held.push({ id: frame.id, end, who: 't1' }));
    const t2 = await thread(c, (frame, end) => held.push({ id: frame.id, end, who: 't2' }));
    const calls = Array.from({ length: 6 }, () => c.call(request, '', 10_000));
    await until(() => (held.length === 6 ? true : undefined));
    expect(held.filter((h) => h.who === 't1')).toHaveLength(3);
    expect(held.filter((h) => h.who === 't2')).toHaveLength(3);
    for (const h of held) answer(h.end, h.id, h.who);
    expect((await Promise.all(calls)).map((a) => new TextDecoder().decode(a)).sort()).toEqual(['t1', 't1', 't1', 't2', 't2', 't2']);
    expect(seen).toEqual([]);
    expect(c.threadPorts().sort()).toEqual([t1.port, t2.port].sort());
    expect(c.load).toBe(0);
  });

  it('threads - a thread that says busy gets no calls until it says free; with every thread busy the host connection takes them', async () => {
    const c = await channel((frame, host) => answer(host, frame.id, 'host'));
    const t = await thread(c, (frame, end) => answer(end, frame.id, 'thread'));
    t.end().write(encodeFrame(FrameType.busy, 0, new Uint8Array(0)));
    // The busy frame is read before the next call is routed.
    await new Promise((r) => setTimeout(r, 50));
    expect(new TextDecoder().decode(await c.call(request, '', 10_000))).toBe('host');
    t.end().write(encodeFrame(FrameType.free, 0, new Uint8Array(0)));
    await new Promise((r) => setTimeout(r, 50));
    expect(new TextDecoder().decode(await c.call(request, '', 10_000))).toBe('thread');
  });

  it('threads - a thread connection that closes fails only its own calls with ChannelClosed and says so once; the rest go on', async () => {
    const c = await channel((frame, host) => answer(host, frame.id, 'host'));
    let lost = 0;
    c.onThreadLost = () => lost++;
    const t = await thread(c, () => undefined);
    const onThread = c.call(request, '', 10_000);
    await new Promise((r) => setTimeout(r, 20));
    t.end().destroy();
    await expect(onThread).rejects.toBeInstanceOf(ChannelClosed);
    expect(lost).toBe(1);
    expect(c.threadPorts()).toEqual([]);
    expect(new TextDecoder().decode(await c.call(request, '', 10_000))).toBe('host');
  });

  it('threads - a thread frame that is not the protocol (an answer to a call sent elsewhere, a busy with a payload) is refused', async () => {
    const hostCalls: number[] = [];
    const c = await channel((frame) => hostCalls.push(frame.id));
    // Sent before any thread connection: it goes to the host's own.
    const onHost = c.call(request, '', 10_000).catch((e: unknown) => e);
    await until(() => (hostCalls.length === 1 ? true : undefined));
    const link = c.addThread(connect({ host: '127.0.0.1', port: 9 }).on('error', () => undefined), 1);
    expect(link.frame({ type: FrameType.reply, id: hostCalls[0]!, payload: new Uint8Array(0) })).toBe(false);
    expect(link.frame({ type: FrameType.busy, id: 0, payload: new Uint8Array([1]) })).toBe(false);
    expect(link.frame({ type: FrameType.hello, id: 0, payload: new Uint8Array(0) })).toBe(false);
    expect(c.load).toBe(1);
    link.closed();
    c.close();
    expect(await onHost).toBeInstanceOf(ChannelClosed);
  });
});
