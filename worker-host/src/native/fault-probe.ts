/**
 * What one page fault costs on this machine, for `npm run bench -- fork`: a
 * lazy fault served by the native pager from the host's page store (a
 * clone's first read of a page its host already holds) against a plain
 * first-touch fault of anonymous memory, measured in one run, interleaved
 * round by round so that both see the same load.
 *
 *   lazy (mapped)    a registered memory over a store configured as forks
 *                    configure it (mapPages): the kernel maps the store's
 *                    page at the fault, no userfault. One page touched per
 *                    16-page window, so that every touch is a fault of its
 *                    own: a first read with the store holding only the
 *                    touched pages (one page mapped per fault), a first
 *                    read with it holding every page (the fault maps the
 *                    window's 16 pages: fault-around), and a first write
 *                    (the page copied)
 *   lazy (1 page)    the pager's path (the store not mapped; what forks did
 *                    before, and what they do where the kernel cannot map
 *                    it): one page copied per fault (UFFDIO_COPY of 4 KiB)
 *   lazy (chunk)     the pager's path copying a fault's whole chunk (16 pages, 64 KiB)
 *   first touch      an unregistered fresh memory: a write makes the kernel
 *                    allocate and zero a page (the same work as a fault that
 *                    brings a page in); a read maps the shared zero page
 *
 * Each touch is timed in C around one load or store (timeTouches); the
 * clock's own cost (the median of back-to-back reads) is subtracted from
 * every median and p99 and reported. Pages are touched in a random order, so
 * nothing is read ahead. Where the kernel has no userfaultfd, the lazy figures
 * are null and `path` names the fallback (the portable pager copies a
 * snapshot before its clone starts, so its clones take no lazy faults).
 */
import { PAGE_SIZE, WASM_PAGE_SIZE } from '@flurry/core';
import { loadNativePager, nativePagerStatus, type NativePager } from './pager.js';

/** One kind of fault: its time in µs, the clock's cost taken off. */
export interface FaultTiming {
  samples: number;
  medianUs: number;
  p99Us: number;
}

export interface FaultFigures {
  /** How lazy faults are served here: 'userfaultfd', or the fallback and why. */
  path: string;
  /** A lazy fault on a page the local page store holds, first read, served as forks serve it (`mapped`: by the kernel). */
  lazyPage: FaultTiming | null;
  /** The same, first write. */
  lazyPageWrite: FaultTiming | null;
  /** A first read whose fault maps its 16-page window of the store (mapped only; null otherwise). */
  lazyWindow: FaultTiming | null;
  /** Whether forks' stores are mapped under their memories here (lazyPage is then a kernel fault; else the pager's). */
  mapped: boolean;
  /** The pager's path: a fault read by the handler thread and served by UFFDIO_COPY of one page. */
  lazyPagePager: FaultTiming | null;
  /** A lazy fault that copies its whole chunk, as forks configure the store. */
  lazyChunk: (FaultTiming & { chunkPages: number }) | null;
  /** The pager's own share of a one-page fault: handler read the fault -> page in place, mean µs. */
  handlerUs: number | null;
  /** Plain anonymous memory, first write (page allocated and zeroed). */
  firstTouchWrite: FaultTiming | null;
  /** Plain anonymous memory, first read (the shared zero page mapped). */
  firstTouchRead: FaultTiming | null;
  /** Median cost of one clock read pair, ns (subtracted above). */
  clockNs: number | null;
}

export interface FaultProbeOptions {
  /** Pages per round (each round uses fresh memories). Default 8192 (32 MiB). */
  pages?: number;
  rounds?: number;
  /** Pages a chunk holds in the chunk variant (the snapshot descriptor's chunkPages). Default 16. */
  chunkPages?: number;
}

/** The q-quantile of sorted values. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** Median and p99 of touch times (ns) in µs, less the clock's cost (never below 0). */
export function faultTiming(timesNs: number[], clockNs: number): FaultTiming {
  const s = Float64Array.from(timesNs).sort();
  const us = (ns: number) => Math.max(0, ns - clockNs) / 1000;
  return { samples: s.length, medianUs: us(quantile(s, 0.5)), p99Us: us(quantile(s, 0.99)) };
}

function shuffled(n: number, pick: (i: number) => number = (i) => i): Uint32Array {
  const a = Uint32Array.from({ length: n }, (_, i) => pick(i));
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/** A fresh memory of `pages` 4 KiB pages (plus one wasm page of slack), its pages never touched. */
function freshMemory(pages: number): WebAssembly.Memory {
  return new WebAssembly.Memory({ initial: Math.ceil((pages * PAGE_SIZE) / WASM_PAGE_SIZE) + 1, maximum: 65536 });
}

/** Touches `order` in a fresh memory registered over a store holding every page; returns touch times and the handler's mean. */
function lazyRound(pager: NativePager, pages: number, data: Uint8Array, order: Uint32Array, chunkPages: number, how: { mapPages?: boolean; write?: boolean; onlyTouched?: boolean } = {}): { times: Float64Array; handlerNs: number } {
  const store = pager.createStore(pages);
  try {
    pager.storeConfigure(store, { ...(chunkPages > 1 ? { chunkPages } : { runPages: 1 }), mapPages: how.mapPages === true });
    if (how.onlyTouched) for (const p of order) pager.storePut(store, p, data.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE));
    else pager.storePut(store, 0, data);
    const memory = freshMemory(pages);
    const reg = pager.registerMemory(memory, memory.buffer.byteLength, store);
    try {
      const times = pager.timeTouches(memory, order, how.write === true);
      const st = pager.registrationStats(reg);
      if (st.missFaults > 0) throw new Error(`the probe's store missed ${st.missFaults} pages`);
      return { times, handlerNs: st.resolvedFaults ? st.waitNs / st.resolvedFaults : NaN };
    } finally {
      pager.unregister(reg);
    }
  } finally {
    pager.dropStore(store);
  }
}

/** Measures lazy fault service against first-touch faults (see the module comment). Synchronous: run it where nothing else waits. */
export function probeFaults(opts: FaultProbeOptions = {}): FaultFigures {
  const pages = opts.pages ?? 8192;
  const rounds = opts.rounds ?? 4;
  const chunkPages = opts.chunkPages ?? 16;
  const status = nativePagerStatus();
  const figures: FaultFigures = { path: 'userfaultfd', lazyPage: null, lazyPageWrite: null, lazyWindow: null, mapped: false, lazyPagePager: null, lazyChunk: null, handlerUs: null, firstTouchWrite: null, firstTouchRead: null, clockNs: null };
  let pager: NativePager;
  try {
    pager = loadNativePager();
  } catch (err) {
    figures.path = `portable (no native pager: ${(err as Error).message}); no fault timed`;
    return figures;
  }
  const lazy = status.available;
  const mapped = lazy && pager.capabilities().missingShmem === true;
  figures.mapped = mapped;
  if (!lazy) figures.path = `portable: a clone copies its snapshot before it starts and takes no lazy faults (${status.reason ?? 'no userfaultfd'})`;
  const clock = Float64Array.from(pager.clockCostNs(100_000)).sort();
  const clockNs = quantile(clock, 0.5);
  figures.clockNs = clockNs;

  // Every page non-zero, so the store copies real bytes.
  const data = new Uint8Array(pages * PAGE_SIZE);
  for (let p = 0; p < pages; p++) data.fill((p % 251) + 1, p * PAGE_SIZE, p * PAGE_SIZE + 64);
  const samples = { page: [] as number[], pageWrite: [] as number[], window: [] as number[], pager: [] as number[], chunk: [] as number[], write: [] as number[], read: [] as number[], handler: [] as number[] };
  const windows = () => shuffled(Math.floor(pages / 16), (i) => i * 16);
  for (let r = 0; r < rounds; r++) {
    samples.write.push(...pager.timeTouches(freshMemory(pages), shuffled(pages), true));
    samples.read.push(...pager.timeTouches(freshMemory(pages), shuffled(pages), false));
    if (!lazy) continue;
    const one = lazyRound(pager, pages, data, shuffled(pages), 1);
    samples.pager.push(...one.times);
    samples.handler.push(one.handlerNs);
    samples.page.push(...lazyRound(pager, pages, data, mapped ? windows() : shuffled(pages), 1, { mapPages: mapped, onlyTouched: mapped }).times);
    if (mapped) samples.window.push(...lazyRound(pager, pages, data, windows(), 1, { mapPages: true }).times);
    samples.pageWrite.push(...lazyRound(pager, pages, data, mapped ? windows() : shuffled(pages), 1, { mapPages: mapped, write: true }).times);
    samples.chunk.push(...lazyRound(pager, pages, data, shuffled(pages / chunkPages, (i) => i * chunkPages), chunkPages).times);
  }
  figures.firstTouchWrite = faultTiming(samples.write, clockNs);
  figures.firstTouchRead = faultTiming(samples.read, clockNs);
  if (lazy) {
    figures.lazyPage = faultTiming(samples.page, clockNs);
    figures.lazyPageWrite = faultTiming(samples.pageWrite, clockNs);
    if (mapped) figures.lazyWindow = faultTiming(samples.window, clockNs);
    figures.lazyPagePager = faultTiming(samples.pager, clockNs);
    figures.lazyChunk = { ...faultTiming(samples.chunk, clockNs), chunkPages };
    figures.handlerUs = samples.handler.reduce((a, b) => a + b, 0) / samples.handler.length / 1000;
  }
  return figures;
}
