/** A call channel's calls against a host end that answers some calls and not others: time limits on one timer, late answers, a closed socket. */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { CallFailed, encodeFrame, FrameReader, FrameType, type Frame } from '@flurry/core';
import { CallChannel, ChannelClosed } from './call-channels.js';

const MAX_FRAME = 1 << 20;
let server: Server | undefined;
let client: Socket | undefined;

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
});

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
});
