/**
 * Copy-on-write local fork: a memfd holds the snapshot; each clone maps it
 * MAP_PRIVATE | MAP_FIXED over its own wasm memory's backing store.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createCopiedMemory, createCowMemory, mapSnapshotInto } from './cow-memory.js';
import type { NativePager } from './pager.js';
import { GuestWorker, loadAddon, PAGE, pageBytes, pageSum, WASM_PAGE, wasmInstance } from './fixtures/harness.mjs';

const { pager: addon, why } = loadAddon();
const pager = addon as NativePager;
const caps = addon?.capabilities();
const skip = !addon ? why : !caps.memfd ? caps.reason : undefined;
if (skip) console.warn(`[native pager] skipping copy-on-write tests: ${skip}`);

/** Byte equality without vitest's element-by-element diffing (slow on MiBs). */
function sameBytes(a: ArrayBuffer | Uint8Array, b: Uint8Array): boolean {
  const x = a instanceof Uint8Array ? a : new Uint8Array(a);
  return Buffer.from(x.buffer, x.byteOffset, x.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
}

/** A snapshot image of `wasmPages`: page p holds pageBytes(p) except every 4th page, which is zero. */
function snapshotImage(wasmPages: number): Uint8Array {
  const img = new Uint8Array(wasmPages * WASM_PAGE);
  for (let p = 0; p < img.length / PAGE; p++) if (p % 4 !== 3) img.set(pageBytes(p), p * PAGE);
  return img;
}

describe.skipIf(!!skip)('native pager: copy-on-write local fork', () => {
  const fds: number[] = [];
  afterEach(() => {
    while (fds.length) pager.closeFd(fds.pop()!);
  });

  it('a clone reads the snapshot, writes privately, and the memfd stays unchanged', async () => {
    const img = snapshotImage(4);
    const fd = pager.memfdCreate('snap', img);
    fds.push(fd);
    expect(pager.fdSize(fd)).toBe(img.length);
    const a = createCowMemory(pager, fd, img.length, 16);
    const b = createCowMemory(pager, fd, img.length, 16);
    const ea = await wasmInstance(a);
    const eb = await wasmInstance(b);
    // Reads see the snapshot (wasm loads and JS views).
    for (const p of [0, 1, 2, 3, 17, 63]) {
      expect(ea.load32(p * PAGE) >>> 0).toBe(p % 4 === 3 ? 0 : p);
      expect(ea.sum(p * PAGE, PAGE)).toBe(p % 4 === 3 ? 0n : pageSum(pageBytes(p)));
    }
    expect(sameBytes(a.buffer, img)).toBe(true);
    // Writes stay in the clone.
    ea.store32(5 * PAGE, 0xdead);
    ea.store32(7 * PAGE, 0xbeef); // a zero (hole) page of the file
    expect(ea.load32(5 * PAGE) >>> 0).toBe(0xdead);
    expect(eb.load32(5 * PAGE) >>> 0).toBe(5);
    expect(eb.load32(7 * PAGE) >>> 0).toBe(0);
    // The memfd is unchanged (and sealed: it cannot be written).
    const check = new WebAssembly.Memory({ initial: 4 });
    pager.readFdInto(check, fd, img.length);
    expect(sameBytes(check.buffer, img)).toBe(true);
    expect(() => pager.memfdWrite(fd, 0, new Uint8Array(PAGE))).toThrow(/EPERM/);
    // The clone's own pages, for free: the ones it wrote.
    expect(Array.from(pager.privatePages(a, img.length))).toEqual([5, 7]);
    expect(Array.from(pager.privatePages(b, img.length))).toEqual([]);
  });

  it('out-of-bounds accesses still trap; memory.grow after the map works and keeps the base', async () => {
    const img = snapshotImage(2);
    const fd = pager.memfdCreate('snap', img);
    fds.push(fd);
    const m = createCowMemory(pager, fd, img.length, 8);
    const e = await wasmInstance(m);
    const base = pager.memoryAddress(m);
    expect(() => e.load32(2 * WASM_PAGE)).toThrow(WebAssembly.RuntimeError);
    expect(() => e.store32(2 * WASM_PAGE + 100, 1)).toThrow(WebAssembly.RuntimeError);
    expect(e.grow(2)).toBe(2);
    expect(pager.memoryAddress(m)).toBe(base);
    // Grown pages are ordinary zero memory past the mapping.
    expect(e.load32(2 * WASM_PAGE) >>> 0).toBe(0);
    e.store32(3 * WASM_PAGE + 4, 99);
    expect(e.load32(3 * WASM_PAGE + 4)).toBe(99);
    expect(e.load32(1 * PAGE) >>> 0).toBe(1);
    expect(() => e.load32(4 * WASM_PAGE)).toThrow(WebAssembly.RuntimeError);
    expect(Array.from(pager.privatePages(m, 4 * WASM_PAGE))).toEqual([3 * (WASM_PAGE / PAGE)]);
  });

  it('maps only within the memory and the file', () => {
    const fd = pager.memfdCreate('snap', snapshotImage(1));
    fds.push(fd);
    const small = new WebAssembly.Memory({ initial: 1, maximum: 4 });
    expect(() => pager.mapSnapshotPrivate(small, fd, 2 * WASM_PAGE)).toThrow(/exceeds the memory/);
    small.grow(1);
    expect(() => pager.mapSnapshotPrivate(small, fd, 2 * WASM_PAGE)).toThrow(/exceeds the file/);
    const big = new WebAssembly.Memory({ initial: 2, maximum: 4 });
    expect(() => mapSnapshotInto(pager, big, fd, WASM_PAGE)).toThrow(/larger than its snapshot/);
    const grown = new WebAssembly.Memory({ initial: 0, maximum: 4 });
    mapSnapshotInto(pager, grown, fd, WASM_PAGE);
    expect(new Uint32Array(grown.buffer)[0]).toBe(0);
    expect(new Uint32Array(grown.buffer)[PAGE / 4]).toBe(1);
  });

  it('populateRead maps the snapshot read-only without copying', () => {
    const img = snapshotImage(4);
    const fd = pager.memfdCreate('snap', img);
    fds.push(fd);
    const m = createCowMemory(pager, fd, img.length, 8);
    pager.populateRead(m, img.length);
    expect(Array.from(pager.privatePages(m, img.length))).toEqual([]);
    expect(sameBytes(m.buffer, img)).toBe(true);
  });

  it('an empty memfd filled piecewise, sparse, then sealed; the copying fallback gives the same bytes', () => {
    const img = snapshotImage(2);
    const fd = pager.memfdCreate('snap', img.length);
    fds.push(fd);
    pager.memfdWrite(fd, 0, img.subarray(0, WASM_PAGE), { sparse: true });
    pager.memfdWrite(fd, WASM_PAGE, img.subarray(WASM_PAGE));
    pager.memfdSeal(fd);
    expect(() => pager.memfdWrite(fd, 0, new Uint8Array(PAGE))).toThrow(/EPERM/);
    const copied = createCopiedMemory(pager, fd, img.length, 4);
    expect(sameBytes(copied.buffer, img)).toBe(true);
    const cow = createCowMemory(pager, fd, img.length, 4);
    expect(sameBytes(cow.buffer, img)).toBe(true);
    // Sources: a SharedArrayBuffer (how the host keeps snapshots) and a Memory.
    const sab = new SharedArrayBuffer(img.length);
    new Uint8Array(sab).set(img);
    for (const source of [sab, cow]) {
      const fd2 = pager.memfdCreate('snap2', source);
      fds.push(fd2);
      expect(sameBytes(createCopiedMemory(pager, fd2, img.length, 4).buffer, img)).toBe(true);
    }
  });

  it('zeroBitmap marks all-zero pages LSB-first', () => {
    const bits = pager.zeroBitmap(snapshotImage(1)); // 16 pages, every 4th zero
    expect(Array.from(bits)).toEqual([0b10001000, 0b10001000]);
  });

  it('a guest worker maps a memfd made by this thread (fd numbers are process-wide)', async () => {
    const img = snapshotImage(2);
    const fd = pager.memfdCreate('snap', img);
    fds.push(fd);
    const guest = await GuestWorker.start();
    try {
      await guest.call('createCow', { fd, byteLength: img.length, maximumPages: 8 });
      expect(await guest.call('load32', { addrs: [PAGE, 2 * PAGE, 3 * PAGE] })).toEqual([1, 2, 0]);
      await guest.call('store32', { addr: PAGE, value: 123 });
      expect(await guest.call('load32', { addrs: [PAGE] })).toEqual([123]);
      const check = new WebAssembly.Memory({ initial: 2 });
      pager.readFdInto(check, fd, img.length);
      expect(new Uint32Array(check.buffer)[PAGE / 4]).toBe(1);
    } finally {
      await guest.worker.terminate();
    }
  });
});
