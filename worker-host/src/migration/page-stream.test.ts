/**
 * The page stream's two ends over real loopback sockets: pages arrive in
 * shared slots, whole and in order of their frames; a wrong token is not
 * welcomed; every kind of bad frame breaks the stream with its reason; a
 * stream that closes before the commit breaks; the commit behind the last
 * frames is answered on the stream, and its failures.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { PAGE_SIZE } from '@flurry/core/basics';
import { PageStreamListener, PageStreamReader, STREAM_SLOT_PAGES, STREAM_WINDOW, StreamFrame } from './page-stream.js';

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

/** A target's end; its commit answers `answer:` and the step's bytes, once `answerAfter` resolves (at once by default). */
function reader(port: number, token: Uint8Array = new Uint8Array(32), answerAfter: () => Promise<void> = async () => undefined) {
  const applied: Applied[] = [];
  /** How many frames had been handed to apply when the commit arrived, and its bytes. */
  const commits: { appliedBefore: number; step: string }[] = [];
  let broke!: (why: string) => void;
  const broken = new Promise<string>((r) => (broke = r));
  const connecting = PageStreamReader.connect({ host: '127.0.0.1', port, token }, {
    apply: async (pages, bytes, memoryBytes) => void applied.push({ pages: [...pages], first: bytes[0] ?? -1, memoryBytes, shared: bytes.buffer instanceof SharedArrayBuffer && pages.buffer instanceof SharedArrayBuffer }),
    commit: async (step) => {
      commits.push({ appliedBefore: applied.length, step: Buffer.from(step).toString() });
      await answerAfter();
      return Buffer.from(`answer:${Buffer.from(step).toString()}`);
    },
    broken: broke,
  });
  connecting.then((r) => closers.push(() => r.close()), () => undefined);
  return { applied, commits, broken, connecting };
}

/** Both real ends, connected: a listener's sender and a reader (answering commits as `reader` does). */
async function bothEnds(answerAfter?: () => Promise<void>) {
  const listener = await PageStreamListener.open({ host: '127.0.0.1' });
  closers.push(() => listener.close());
  const r = reader(listener.offer.port, listener.offer.token, answerAfter);
  const sender = await listener.connected();
  const target = await r.connecting;
  return { r, sender, target };
}

describe('page stream - both ends', () => {
  it('pages - frames from the sender arrive whole in shared slots, each acknowledged once written; the commit ends the stream without a failure', async () => {
    const { r, sender } = await bothEnds();
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
    expect(Buffer.from(await sender.commit(Buffer.from('c1'))).toString()).toBe('answer:c1');
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
    const { r, sender } = await bothEnds();
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
    ['a welcome frame with a payload', [frame(StreamFrame.welcome, 0, new Uint8Array(3))], /a frame of type 2 with a payload/],
    ['a commit of no bytes', [frame(StreamFrame.commit, 0)], /a commit of 0 bytes \(1 to 1048576\)/],
    ['a commit too large', [Buffer.from([0, 0x10, 0, 6, StreamFrame.commit, 0, 0, 0, 0])], /a commit of 1048577 bytes/],
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
    const r = await PageStreamReader.connect({ host: '127.0.0.1', port: src.port, token: new Uint8Array(32) }, { apply: () => new Promise(() => undefined), commit: async () => new Uint8Array(0), broken: broke });
    closers.push(() => r.close());
    expect(await broken).toMatch(reason);
    // The error frame reaches the source before the connection closes.
    expect(await told).toMatch(reason);
  });

  it('broken - a stream that closes before the commit breaks; a pages frame cut short by the close too', async () => {
    const src = await fakeSource((socket) => {
      const f = pagesFrame(1, [1, 2]);
      socket.end(f.subarray(0, f.length - 100));
    });
    const r = reader(src.port);
    await r.connecting;
    expect(await r.broken).toMatch(/the connection closed before the commit/);
    expect(r.applied).toEqual([]);
  });

  it('commit - behind last frames not acknowledged yet: each is handed to apply before the commit, the answer comes back on the stream, no ack follows the commit, and nothing breaks', async () => {
    const { r, sender } = await bothEnds();
    await sender.send(Uint32Array.of(1), new Uint8Array(PAGE_SIZE).fill(1), 4 << 20);
    const unacked = [sender.send(Uint32Array.of(2), new Uint8Array(PAGE_SIZE).fill(2), 4 << 20), sender.send(Uint32Array.of(3), new Uint8Array(PAGE_SIZE).fill(3), 4 << 20)];
    const answer = await sender.commit(Buffer.from('last'));
    expect(Buffer.from(answer).toString()).toBe('answer:last');
    expect(r.commits).toEqual([{ appliedBefore: 3, step: 'last' }]);
    expect(r.applied.map((a) => a.first)).toEqual([1, 2, 3]);
    // The source waits for none after the commit: no ack comes (they fail with the connection's close).
    const acks = await Promise.race([Promise.allSettled(unacked), new Promise<[]>((res) => setTimeout(() => res([]), 200))]);
    expect(acks.filter((a) => a.status === 'fulfilled')).toEqual([]);
    expect(await Promise.race([r.broken, new Promise((res) => setTimeout(() => res('not broken'), 100))])).toBe('not broken');
  });

  it('commit - on a stream broken already it throws at once, sent to nobody; one whose stream breaks before the answer rejects (its outcome unknown)', async () => {
    let cut!: () => void;
    const { r, sender, target } = await bothEnds(() => new Promise<void>((res) => (cut = res)));
    const asked = sender.commit(Buffer.from('c'));
    while (r.commits.length === 0) await new Promise((res) => setTimeout(res, 5));
    // The target is lost while it makes its answer (its process dies: the connection goes).
    (target as unknown as { socket: Socket }).socket.destroy();
    await expect(asked).rejects.toThrow(/the page stream to the target broke: the connection closed/);
    cut();
    expect(() => sender.commit(Buffer.from('again'))).toThrow(/broke/);
  });

  it('commit - a frame after the commit is not taken: the connection closes without an answer, and the commit decides (no break is reported)', async () => {
    let answered = false;
    const src = await fakeSource((socket) => {
      socket.on('data', (d: Buffer) => (answered ||= d.includes(Buffer.from('answer:'))));
      socket.write(frame(StreamFrame.commit, 0, Buffer.from('c')));
      socket.write(pagesFrame(1, [1]));
    });
    let release!: () => void;
    const r = reader(src.port, undefined, () => new Promise<void>((res) => (release = res)));
    await r.connecting;
    while (r.commits.length === 0) await new Promise((res) => setTimeout(res, 5));
    await new Promise((res) => setTimeout(res, 50));
    release();
    await new Promise((res) => setTimeout(res, 50));
    expect(answered).toBe(false);
    expect(r.applied).toEqual([]);
    expect(await Promise.race([r.broken, new Promise((res) => setTimeout(() => res('not broken'), 50))])).toBe('not broken');
  });

  it('no source - nothing listens: the connect is refused (the pages then go over NATS)', async () => {
    const server = createServer();
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
    const { port } = server.address() as { port: number };
    await new Promise((res) => server.close(res));
    await expect(reader(port).connecting).rejects.toThrow(/no page stream: .*ECONNREFUSED/);
  });
});
