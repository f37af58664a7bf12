/**
 * The page stream's two ends over real loopback sockets: pages arrive in
 * shared slots, whole and in order of their frames; a wrong token is not
 * welcomed; every kind of bad frame breaks the stream with its reason; a
 * stream that closes before `done` breaks, one that is done does not; the
 * commit's wait for the last frames (`delivered`) and its failures.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { PAGE_SIZE } from '@flurry/core/basics';
import { PageStreamListener, PageStreamReader, STREAM_SLOT_PAGES, STREAM_WINDOW, StreamFrame, type PageStreamSender } from './page-stream.js';

const frame = (type: number, id: number, payload: Uint8Array = new Uint8Array(0)) => {
  const out = Buffer.alloc(9 + payload.length);
  out.writeUInt32BE(5 + payload.length, 0);
  out[4] = type;
  out.writeUInt32BE(id, 5);
  out.set(payload, 9);
  return out;
};
/** A pages frame as the source writes it: count, memory in pages, page numbers (LE), bytes. */
const pagesFrame = (id: number, pages: number[], memoryPages = 1024, fill = 7, lengthFor = pages.length) => {
  const body = Buffer.alloc(8 + lengthFor * (4 + PAGE_SIZE));
  body.writeUInt32BE(pages.length, 0);
  body.writeUInt32BE(memoryPages, 4);
  pages.forEach((p, i) => body.writeUInt32LE(p, 8 + i * 4));
  body.fill(fill, 8 + pages.length * 4);
  return frame(StreamFrame.pages, id, body);
};

interface Applied {
  pages: number[];
  first: number;
  memoryBytes: number;
  shared: boolean;
}

const closers: (() => void)[] = [];
afterEach(() => {
  for (const c of closers.splice(0)) c();
});

/** A fake source: welcomes the hello, then writes what `script` says. */
async function fakeSource(script: (socket: Socket) => void): Promise<{ server: Server; port: number; hello: Promise<Buffer> }> {
  let gotHello!: (b: Buffer) => void;
  const hello = new Promise<Buffer>((r) => (gotHello = r));
  const server = createServer((socket) => {
    socket.on('error', () => undefined);
    socket.once('data', (d: Buffer) => {
      gotHello(d);
      socket.write(frame(StreamFrame.welcome, 0));
      script(socket);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => server.close());
  return { server, port: (server.address() as { port: number }).port, hello };
}

function reader(port: number, token: Uint8Array = new Uint8Array(32)) {
  const applied: Applied[] = [];
  let broke!: (why: string) => void;
  const broken = new Promise<string>((r) => (broke = r));
  const connecting = PageStreamReader.connect({ host: '127.0.0.1', port, token }, {
    apply: async (pages, bytes, memoryBytes) => void applied.push({ pages: [...pages], first: bytes[0] ?? -1, memoryBytes, shared: bytes.buffer instanceof SharedArrayBuffer && pages.buffer instanceof SharedArrayBuffer }),
    broken: broke,
  });
  connecting.then((r) => closers.push(() => r.close()), () => undefined);
  return { applied, broken, connecting };
}

describe('page stream - both ends', () => {
  it('pages - frames from the sender arrive whole in shared slots, each acknowledged once written; done ends the stream without a failure', async () => {
    const listener = await PageStreamListener.open({ host: '127.0.0.1' });
    closers.push(() => listener.close());
    const r = reader(listener.offer.port, listener.offer.token);
    const sender: PageStreamSender = await listener.connected();
    await r.connecting;
    const sends: Promise<void>[] = [];
    for (let f = 0; f < STREAM_WINDOW; f++) {
      const pages = Uint32Array.from({ length: STREAM_SLOT_PAGES }, (_, i) => f * STREAM_SLOT_PAGES + i);
      sends.push(sender.send(pages, new Uint8Array(pages.length * PAGE_SIZE).fill(f + 1), 4 << 20));
    }
    await Promise.all(sends);
    expect(r.applied.map((a) => [a.pages.length, a.pages[0], a.first, a.memoryBytes, a.shared])).toEqual(
      Array.from({ length: STREAM_WINDOW }, (_, f) => [STREAM_SLOT_PAGES, f * STREAM_SLOT_PAGES, f + 1, 4 << 20, true]),
    );
    // An empty frame (a round of no pages tells the memory size) and then the slots are free again.
    await sender.send(new Uint32Array(0), new Uint8Array(0), 8 << 20);
    expect(r.applied.at(-1)).toMatchObject({ pages: [], memoryBytes: 8 << 20 });
    sender.finish();
    const outcome = await Promise.race([r.broken, new Promise((res) => setTimeout(() => res('not broken'), 200))]);
    expect(outcome).toBe('not broken');
  });

  it('token - a connection with another token is not welcomed: the target gives up (the pages then go over NATS) and the listener still waits for the right one', async () => {
    const listener = await PageStreamListener.open({ host: '127.0.0.1' });
    closers.push(() => listener.close());
    const wrong = reader(listener.offer.port, new Uint8Array(32).fill(9));
    await expect(wrong.connecting).rejects.toThrow(/no page stream: .*(closed|reset|ECONNRESET)/);
    const right = reader(listener.offer.port, listener.offer.token);
    await expect(right.connecting).resolves.toBeInstanceOf(PageStreamReader);
    await expect(listener.connected()).resolves.toBeDefined();
  });

  it('sender - more than the window in flight, or a frame larger than a slot, is refused before it is written', async () => {
    const listener = await PageStreamListener.open({ host: '127.0.0.1' });
    closers.push(() => listener.close());
    const r = reader(listener.offer.port, listener.offer.token);
    const sender = await listener.connected();
    await r.connecting;
    const big = new Uint32Array(STREAM_SLOT_PAGES + 1);
    await expect(sender.send(big, new Uint8Array(big.length * PAGE_SIZE), 4 << 20)).rejects.toThrow(/cannot be sent/);
    await expect(sender.send(new Uint32Array(1), new Uint8Array(PAGE_SIZE), 4 << 20 | 1)).rejects.toThrow(/cannot be sent/);
  });

  it.each([
    ['a frame of an unknown type', [frame(9, 1)], /a frame of type 9 from the source/],
    ['a second welcome', [frame(StreamFrame.welcome, 0)], /a second welcome/],
    ['a frame too short for its head', [Buffer.from([0, 0, 0, 2, 3, 0])], /a frame of 2 bytes/],
    ['more pages than a slot holds', [pagesFrame(1, Array.from({ length: STREAM_SLOT_PAGES + 1 }, (_, i) => i))], /a pages frame of 257 pages \(at most 256\)/],
    ['a length that does not match its pages', [pagesFrame(1, [1, 2], 1024, 7, 3)], /a pages frame of 2 pages in \d+ bytes/],
    ['a page beyond wasm32', [pagesFrame(1, [2 ** 20])], /page 1048576 is beyond wasm32's 1048576 pages/],
    ['a memory beyond wasm32', [pagesFrame(1, [1], 2 ** 20 + 1)], /a memory of 1048577 pages/],
    ['more frames in flight than the window', Array.from({ length: STREAM_WINDOW + 1 }, (_, i) => pagesFrame(i + 1, [i]) ), /more than 4 pages frames in flight/],
    ['a done frame with a payload', [frame(StreamFrame.done, 0, new Uint8Array(3))], /a frame of type 6 with a payload/],
  ])('bad frame - %s breaks the stream with its reason, and the target tells the source', async (_what, frames, reason) => {
    let told: Promise<string> | undefined;
    const src = await fakeSource((socket) => {
      told = new Promise((res) => {
        const got: Buffer[] = [];
        socket.on('data', (d: Buffer) => got.push(d));
        socket.on('close', () => res(Buffer.concat(got).toString('latin1')));
      });
      for (const f of frames) socket.write(f);
    });
    // Slots stay busy: an apply that never ends, so that the window's bound is what refuses.
    let broke!: (why: string) => void;
    const broken = new Promise<string>((r) => (broke = r));
    const r = await PageStreamReader.connect({ host: '127.0.0.1', port: src.port, token: new Uint8Array(32) }, { apply: () => new Promise(() => undefined), broken: broke });
    closers.push(() => r.close());
    expect(await broken).toMatch(reason);
    // The error frame reaches the source before the connection closes.
    expect(await told).toMatch(reason);
  });

  it('broken - a stream that closes before done breaks; a pages frame cut short by the close too', async () => {
    const src = await fakeSource((socket) => {
      const f = pagesFrame(1, [1, 2]);
      socket.end(f.subarray(0, f.length - 100));
    });
    const r = reader(src.port);
    await r.connecting;
    expect(await r.broken).toMatch(/the connection closed before the last round was in/);
    expect(r.applied).toEqual([]);
  });

  it('last frames - the commit waits for the frames the source says it sent: sent after done and unacknowledged, they are all read first; no ack follows done', async () => {
    const listener = await PageStreamListener.open({ host: '127.0.0.1' });
    closers.push(() => listener.close());
    const r = reader(listener.offer.port, listener.offer.token);
    const sender = await listener.connected();
    const target = await r.connecting;
    await sender.send(Uint32Array.of(1), new Uint8Array(PAGE_SIZE).fill(1), 4 << 20);
    // Asked before the last frames arrive (the commit may overtake them on another connection).
    const waited = target.delivered(3, 5000);
    const unacked = [sender.send(Uint32Array.of(2), new Uint8Array(PAGE_SIZE).fill(2), 4 << 20), sender.send(Uint32Array.of(3), new Uint8Array(PAGE_SIZE).fill(3), 4 << 20)];
    expect(sender.sent).toBe(3);
    sender.finish();
    await waited;
    expect(r.applied.map((a) => a.first)).toEqual([1, 2, 3]);
    // The source waits for none after done: no ack comes (they fail with the connection's close), and the stream does not break.
    const acks = await Promise.race([Promise.allSettled(unacked), new Promise<[]>((res) => setTimeout(() => res([]), 200))]);
    expect(acks.filter((a) => a.status === 'fulfilled')).toEqual([]);
    expect(await Promise.race([r.broken, new Promise((res) => setTimeout(() => res('not broken'), 100))])).toBe('not broken');
  });

  it.each([
    ['the stream ends with fewer', 3, [pagesFrame(1, [1]), frame(StreamFrame.done, 0)], 5000, /the stream ended after 1 of the 3 pages frames the source sent/],
    ['more came than the source says it sent', 1, [pagesFrame(1, [1]), pagesFrame(2, [2])], 5000, /2 pages frames arrived, the source sent 1/],
    ['they do not come in time', 2, [pagesFrame(1, [1])], 100, /1 of the 2 pages frames the source sent arrived within 100 ms/],
  ])('last frames - %s: the wait fails (the target refuses the commit)', async (_what, frames, script, withinMs, reason) => {
    const src = await fakeSource((socket) => {
      for (const f of script) socket.write(f);
    });
    const r = reader(src.port);
    const target = await r.connecting;
    // Some frames may be in before the wait: it counts those too.
    await new Promise((res) => setTimeout(res, 50));
    await expect(target.delivered(frames, withinMs)).rejects.toThrow(reason);
  });

  it('last frames - a stream that breaks while the commit waits fails the wait with its reason', async () => {
    const src = await fakeSource((socket) => {
      setTimeout(() => socket.write(frame(9, 1)), 50);
    });
    const r = reader(src.port);
    const target = await r.connecting;
    await expect(target.delivered(1, 5000)).rejects.toThrow(/page stream's last frames: a frame of type 9 from the source/);
  });

  it('no source - nothing listens: the connect is refused (the pages then go over NATS)', async () => {
    const server = createServer();
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
    const { port } = server.address() as { port: number };
    await new Promise((res) => server.close(res));
    await expect(reader(port).connecting).rejects.toThrow(/no page stream: .*ECONNREFUSED/);
  });
});
