#!/usr/bin/env node
// Measurements of the native pager on this machine (not a test):
//  1. local fork: copy-on-write mapping of a memfd (new Memory + grow + map)
//     at 64 MiB, 256 MiB and 1 GiB, against the copying fallback;
//  2. fault service latency: pages served from the C store, zero pages, the
//     miss path through JavaScript, against ordinary first-touch faults;
//  3. dirty tracking: PAGEMAP_SCAN collect-and-reprotect of 16,384 pages,
//     and the cost of writes under async and sync write-protect.
//
// Usage: node --expose-gc worker-host/native/measure.mjs [--quick]
// (build first: node_modules/.bin/node-gyp rebuild --nodedir=/usr --directory worker-host/native)
import { GuestWorker, loadAddon, PAGE, WASM_PAGE, wasmInstance } from '../src/native/fixtures/harness.mjs';

const quick = process.argv.includes('--quick');
const { pager, why } = loadAddon();
if (!pager) {
  console.error(why);
  process.exit(1);
}
const caps = pager.capabilities();
console.log(`capabilities: ${JSON.stringify(caps)}`);
console.log(`node ${process.version}, ${process.arch}`);

const MiB = 1024 * 1024;
const ns = () => process.hrtime.bigint();
const ms = (t) => Number(t) / 1e6;
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))];
};
const fmt = (x, d = 3) => x.toFixed(d);

function maybeGc() {
  if (globalThis.gc) globalThis.gc();
}

// ---------------------------------------------------------------------------
// 1. Local fork
// ---------------------------------------------------------------------------
console.log('\n== local fork: copy-on-write map vs copy ==');
const MAX_PAGES = 65536; // a 4 GiB maximum, like a real guest
for (const sizeMiB of [64, 256, 1024]) {
  const bytes = sizeMiB * MiB;
  const wasmPages = bytes / WASM_PAGE;
  // Snapshot: every page holds data (worst case for copying; mapping does not care).
  const img = new Uint8Array(bytes);
  const words = new Uint32Array(img.buffer);
  for (let i = 0; i < words.length; i += 1024) words[i] = i + 1;
  let t = ns();
  const fd = pager.memfdCreate(`snap-${sizeMiB}`, img, { sparse: false });
  const memfdMs = ms(ns() - t);

  const runs = quick ? 5 : 25;
  const cow = [];
  const cowInitial = [];
  const mapOnly = [];
  for (let i = 0; i < runs; i++) {
    // Not timed: collect the previous clones and let V8's background sweeper
    // unmap them (munmap takes the mm's lock and would stall the next mmap).
    maybeGc();
    await new Promise((r) => setTimeout(r, 30));
    t = ns();
    const m = new WebAssembly.Memory({ initial: 1, maximum: MAX_PAGES });
    m.grow(wasmPages - 1);
    const t1 = ns();
    pager.mapSnapshotPrivate(m, fd, bytes);
    const t2 = ns();
    cow.push(ms(t2 - t));
    mapOnly.push(ms(t2 - t1));
    t = ns();
    const m2 = new WebAssembly.Memory({ initial: wasmPages, maximum: MAX_PAGES });
    pager.mapSnapshotPrivate(m2, fd, bytes);
    cowInitial.push(ms(ns() - t));
    if (i === 0) {
      // Correctness spot check.
      const v = new Uint32Array(m.buffer);
      if (v[1024 * 7] !== 1024 * 7 + 1) throw new Error('CoW clone does not read the snapshot');
    }
  }
  maybeGc();

  // Copying fallbacks.
  const copyRuns = sizeMiB >= 1024 ? 1 : quick ? 1 : 3;
  const copyPread = [];
  const copySet = [];
  const sab = new SharedArrayBuffer(bytes);
  new Uint8Array(sab).set(img);
  for (let i = 0; i < copyRuns; i++) {
    t = ns();
    const m = new WebAssembly.Memory({ initial: 1, maximum: MAX_PAGES });
    m.grow(wasmPages - 1);
    pager.readFdInto(m, fd, bytes);
    copyPread.push(ms(ns() - t));
    maybeGc();
    t = ns();
    const m2 = new WebAssembly.Memory({ initial: 1, maximum: MAX_PAGES });
    m2.grow(wasmPages - 1);
    new Uint8Array(m2.buffer).set(new Uint8Array(sab));
    copySet.push(ms(ns() - t));
    maybeGc();
  }
  // After a CoW fork: reading every page (file-backed minor faults), with and without MADV_POPULATE_READ.
  const m = new WebAssembly.Memory({ initial: wasmPages, maximum: MAX_PAGES });
  pager.mapSnapshotPrivate(m, fd, bytes);
  const v = new Uint32Array(m.buffer);
  t = ns();
  let x = 0;
  for (let i = 0; i < v.length; i += 1024) x ^= v[i];
  const touchMs = ms(ns() - t);
  const m3 = new WebAssembly.Memory({ initial: wasmPages, maximum: MAX_PAGES });
  pager.mapSnapshotPrivate(m3, fd, bytes);
  t = ns();
  pager.populateRead(m3, bytes);
  const popMs = ms(ns() - t);
  pager.closeFd(fd);
  console.log(
    `${String(sizeMiB).padStart(5)} MiB: CoW fork (new Memory + grow + map) median ${fmt(median(cow))} ms ` +
      `(map alone ${fmt(median(mapOnly))} ms; new Memory at full size + map ${fmt(median(cowInitial))} ms, ${runs} runs) | ` +
      `copy: pread ${fmt(median(copyPread), 1)} ms, Uint8Array.set ${fmt(median(copySet), 1)} ms (${copyRuns} run) | ` +
      `memfd fill ${fmt(memfdMs, 1)} ms | after fork: read every page ${fmt(touchMs, 1)} ms, MADV_POPULATE_READ ${fmt(popMs, 1)} ms` +
      (x === 0.5 ? '' : ''),
  );
  maybeGc();
}

// ---------------------------------------------------------------------------
// 2. Fault service latency
// ---------------------------------------------------------------------------
if (!caps.userfaultfd) {
  console.log(`\nskipping fault latency: ${caps.reason}`);
} else {
  console.log('\n== fault service latency (guest thread, one wasm load per page) ==');
  const PAGES = quick ? 2048 : 8192; // 32 MiB
  const wasmPages = (PAGES * PAGE) / WASM_PAGE;
  const order = Array.from({ length: PAGES }, (_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const pageData = new Uint8Array(PAGES * PAGE);
  for (let p = 0; p < PAGES; p++) pageData[p * PAGE] = p & 0xff;

  async function run(label, { fill, zero, runPages = 1, chunkPages, sequential, missJs, register = true }) {
    const store = pager.createStore(PAGES);
    pager.storeConfigure(store, { runPages, chunkPages });
    if (fill) pager.storePut(store, 0, pageData);
    if (zero) pager.storeMarkZero(store, new Uint8Array(PAGES / 8).fill(0xff));
    if (missJs) pager.setMissHandler(store, (pages) => {
      for (const p of pages) pager.storePut(store, p, pageData.subarray(p * PAGE, (p + 1) * PAGE));
    });
    const g = await GuestWorker.start();
    await g.call('create', { initialPages: wasmPages + 1, maximumPages: 1024 });
    // Warm the wasm code on the page past the snapshot (a zero page, not measured).
    await g.call('touch', { pages: [PAGES] });
    const reg = register ? await g.register(1024 * WASM_PAGE, store) : undefined;
    await g.call('touch', { pages: [PAGES + 1] });
    const before = reg ? pager.registrationStats(reg) : undefined;
    const pages = sequential ? order.map((_, i) => i) : order;
    const t = ns();
    const { times } = await g.call('touch', { pages });
    const wallMs = ms(ns() - t);
    const st = reg ? pager.registrationStats(reg) : undefined;
    const faults = st ? st.faults - before.faults : PAGES;
    const handlerUs = st ? (st.waitNs - before.waitNs) / (st.resolvedFaults - before.resolvedFaults) / 1000 : NaN;
    const us = times.map((x) => x / 1000);
    console.log(
      `${label.padEnd(44)} per touch median ${fmt(median(us), 1)} µs, p90 ${fmt(pct(us, 90), 1)} µs, p99 ${fmt(pct(us, 99), 1)} µs; ` +
        `${PAGES} pages in ${fmt(wallMs, 1)} ms (${fmt((wallMs * 1000) / PAGES, 1)} µs/page)` +
        (st ? `; ${faults} faults, handler-side mean ${fmt(handlerUs, 1)} µs` : ''),
    );
    if (reg) pager.unregister(reg);
    await g.stop(pager);
    pager.setMissHandler(store, null);
    for (let i = 0; i < 100; i++) {
      try {
        pager.dropStore(store);
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 5));
      }
    }
  }

  await run('baseline: unregistered first touch (random)', { register: false });
  await run('from C store, run 1 (random order)', { fill: true, runPages: 1 });
  await run('zero page, run 1 (random order)', { zero: true, runPages: 1 });
  await run('miss -> JS on main thread -> storePut (random)', { missJs: true, runPages: 1 });
  await run('from C store, run 16 (sequential)', { fill: true, runPages: 16, sequential: true });
  await run('from C store, chunks of 16 (random)', { fill: true, chunkPages: 16 });
}

// ---------------------------------------------------------------------------
// 3. Dirty tracking
// ---------------------------------------------------------------------------
if (!caps.userfaultfd || !caps.writeProtect) {
  console.log(`\nskipping dirty tracking: ${caps.reason}`);
} else {
  console.log('\n== dirty tracking: 16,384 pages (64 MiB) written, then collected ==');
  const PAGES = 16384;
  const wasmPages = (PAGES * PAGE) / WASM_PAGE;
  const modes = [];
  if (caps.wpAsync && caps.pagemapScan) modes.push('async');
  if (caps.wpUnpopulated) modes.push('sync');
  for (const mode of modes) {
    const memory = new WebAssembly.Memory({ initial: wasmPages, maximum: 16384 });
    const e = await wasmInstance(memory);
    e.writePages(0, PAGES, 1, 1); // populate first
    let t = ns();
    const tracker = pager.trackDirty(memory, 16384 * WASM_PAGE, mode); // a 1 GiB maximum registered
    const setupMs = ms(ns() - t);
    const writeMs = [];
    const collectMs = [];
    const emptyMs = [];
    const rounds = quick ? 3 : 10;
    for (let r = 0; r < rounds; r++) {
      t = ns();
      e.writePages(0, PAGES, 1, r + 2);
      writeMs.push(ms(ns() - t));
      t = ns();
      const dirty = pager.collectDirty(tracker, memory);
      collectMs.push(ms(ns() - t));
      if (dirty.length !== PAGES) throw new Error(`collected ${dirty.length} pages, expected ${PAGES}`);
      t = ns();
      const none = pager.collectDirty(tracker, memory);
      emptyMs.push(ms(ns() - t));
      if (none.length !== 0) throw new Error('pages dirty without writes');
    }
    // A sparse round: every 16th page.
    e.writePages(0, PAGES / 16, 16, 9);
    t = ns();
    const sparse = pager.collectDirty(tracker, memory);
    const sparseMs = ms(ns() - t);
    t = ns();
    pager.collectDirty(tracker);
    const fullScanMs = ms(ns() - t);
    if (sparse.length !== PAGES / 16) throw new Error('sparse round wrong');
    pager.stopTracking(tracker);
    // Same writes without tracking.
    const plain = [];
    for (let r = 0; r < rounds; r++) {
      t = ns();
      e.writePages(0, PAGES, 1, r + 100);
      plain.push(ms(ns() - t));
    }
    console.log(
      `${mode.padEnd(5)}: trackDirty (1 GiB max) ${fmt(setupMs, 2)} ms | collect 16,384 dirty pages median ${fmt(median(collectMs), 2)} ms ` +
        `(none dirty ${fmt(median(emptyMs), 2)} ms; 1,024 scattered ${fmt(sparseMs, 2)} ms; ` +
        `none dirty scanning the whole 1 GiB maximum ${fmt(fullScanMs, 2)} ms) | ` +
        `writing 16,384 pages after a collect ${fmt(median(writeMs), 2)} ms vs ${fmt(median(plain), 2)} ms untracked ` +
        `(${fmt((median(writeMs) * 1000) / PAGES, 2)} µs per first write)`,
    );
  }
}
