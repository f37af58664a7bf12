import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { callPayload, createLogger, decode, encode, encodeFrame, FrameReader, FrameType, type Frame, type InvokeReply, type InvokeRequest } from '@flurry/core';
import { CallChannels } from './call-channels.js';

const MAX_FRAME = 64 * 1024;
const request: InvokeRequest = { requestId: 'r1', tenant: 't1', name: 'echo', digest: 'ab'.repeat(32), method: 'POST', path: '/', query: '', headers: [], body: new Uint8Array([1, 2, 3]) };

/** A peer of the host's listener: what it receives, frame by frame, and whether the host closed it. */
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

  static async to(port: number): Promise<Peer> {
    const socket = connect({ host: '127.0.0.1', port });
    await new Promise((resolve) => socket.once('connect', resolve));
    return new Peer(socket);
  }

  /** Resolves once `frames` frames came or the host closed the connection. */
  async until(frames: number): Promise<void> {
    while (this.frames.length < frames && !this.closed) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}

describe('call channels (host side)', () => {
  let channels: CallChannels;
  let port: number;
  let token: Uint8Array;
  const taken: InvokeRequest[] = [];

  beforeEach(async () => {
    taken.length = 0;
    channels = await CallChannels.start({
      hostId: 'h1', listen: { host: '127.0.0.1', port: 0 }, maxFrameBytes: MAX_FRAME, log: createLogger('test', {}, 'silent'),
      take: (req) => {
        taken.push(req);
        if (req.name !== 'echo') return undefined;
        return Promise.resolve({ ok: true, status: 200, headers: [], body: req.body, hostId: 'h1', durationMs: 0 });
      },
    });
    token = randomBytes(32);
    const reply = channels.grant(token);
    if (!reply.ok) throw new Error('not granted');
    port = reply.port;
    expect(reply).toMatchObject({ hostId: 'h1', host: '127.0.0.1' });
  });

  afterEach(() => channels.close());

  async function welcomed(): Promise<Peer> {
    const peer = await Peer.to(port);
    peer.socket.write(encodeFrame(FrameType.hello, 0, token));
    await peer.until(1);
    expect(peer.frames[0]).toMatchObject({ type: FrameType.welcome });
    expect(Buffer.from(peer.frames[0]!.payload).toString()).toBe('h1');
    return peer;
  }

  it('a call with the granted token is answered with its id; one of a version not served here is declined', async () => {
    const peer = await welcomed();
    peer.socket.write(encodeFrame(FrameType.call, 7, callPayload('', encode(request))));
    peer.socket.write(encodeFrame(FrameType.call, 8, callPayload('', encode({ ...request, name: 'other' }))));
    await peer.until(3);
    expect(peer.frames[1]).toMatchObject({ type: FrameType.reply, id: 7 });
    const reply = decode(peer.frames[1]!.payload) as InvokeReply;
    expect(reply).toMatchObject({ ok: true, status: 200, hostId: 'h1' });
    expect(peer.frames[2]).toMatchObject({ type: FrameType.declined, id: 8 });
    expect(taken.map((r) => r.name)).toEqual(['echo', 'other']);
    peer.socket.destroy();
  });

  it('bad input - a wrong token, a call before the hello, garbage or an oversized frame close the connection; nothing is called', async () => {
    const attempts: Buffer[] = [
      encodeFrame(FrameType.hello, 0, randomBytes(32)),
      encodeFrame(FrameType.hello, 0, new Uint8Array(0)),
      encodeFrame(FrameType.call, 1, callPayload('', encode(request))),
      Buffer.from('GET / HTTP/1.1\r\nhost: x\r\n\r\n'),
      Buffer.from([0, 0, 0, 2, 1, 1]),
      Buffer.from([0xff, 0xff, 0xff, 0xff]),
    ];
    for (const bytes of attempts) {
      const peer = await Peer.to(port);
      peer.socket.write(bytes);
      await peer.until(1);
      expect(peer.closed, bytes.toString('hex').slice(0, 40)).toBe(true);
      expect(peer.frames).toEqual([]);
    }
    expect(taken).toEqual([]);
    // The listener still takes the gateway's calls.
    const peer = await welcomed();
    peer.socket.destroy();
  });

  it('bad input - after the hello: a malformed request is refused as bad_request, a frame of another type or too large closes it', async () => {
    const peer = await welcomed();
    peer.socket.write(encodeFrame(FrameType.call, 3, callPayload('', encode({ ...request, body: 'not bytes' }))));
    peer.socket.write(encodeFrame(FrameType.call, 4, new Uint8Array([200, 1, 2])));
    peer.socket.write(encodeFrame(FrameType.call, 5, callPayload('not-a-traceparent', encode(request))));
    await peer.until(4);
    expect(peer.frames.slice(1).map((f) => f.id)).toEqual([3, 4, 5]);
    expect(decode(peer.frames[1]!.payload)).toMatchObject({ ok: false, error: { code: 'bad_request' }, hostId: 'h1' });
    expect(decode(peer.frames[2]!.payload)).toMatchObject({ ok: false, error: { code: 'bad_request' } });
    // A malformed trace is no trace: the call itself is fine.
    expect(decode(peer.frames[3]!.payload)).toMatchObject({ ok: true, status: 200 });
    expect(taken).toHaveLength(1);
    peer.socket.write(encodeFrame(FrameType.reply, 6, new Uint8Array(0)));
    await peer.until(99);
    expect(peer.closed).toBe(true);

    const big = await welcomed();
    big.socket.write(encodeFrame(FrameType.call, 9, new Uint8Array(MAX_FRAME)));
    await big.until(99);
    expect(big.closed).toBe(true);
    expect(big.frames).toHaveLength(1);
  });

  it('a token is good only on the listener it was granted to, and close() ends the connections', async () => {
    const other = await CallChannels.start({ hostId: 'h2', listen: { host: '127.0.0.1', port: 0 }, maxFrameBytes: MAX_FRAME, log: createLogger('test', {}, 'silent'), take: () => undefined });
    try {
      const where = other.grant(randomBytes(32));
      if (!where.ok) throw new Error('not granted');
      const peer = await Peer.to(where.port);
      peer.socket.write(encodeFrame(FrameType.hello, 0, token));
      await peer.until(1);
      expect(peer.closed).toBe(true);
    } finally {
      other.close();
    }
    const peer = await welcomed();
    channels.close();
    await peer.until(99);
    expect(peer.closed).toBe(true);
  });
});
