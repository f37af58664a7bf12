/**
 * Live migration of persistent instances, the guest-thread side: dirty
 * tracking of an instance's memory (native WP_ASYNC + PAGEMAP_SCAN, sync
 * write-protect faults, or comparing with the copy last sent), reading the
 * pages of a round, and building an instance from received pages + globals.
 * Every op runs between two requests of the instance (they are pinned jobs).
 */
import { createHash } from 'node:crypto';
import { PAGE_SIZE, WASM_PAGE_SIZE } from '@flurry/core/basics';
import type { DirtyMode, NativePager } from '../native/pager.js';
import type { GlobalValue } from './instance.js';

export type MigrationMode = DirtyMode | 'compare';

export type MigrationOp =
  /** Starts tracking and arms its first step (`tracked.armed` false: `arm` the next ones, each between two requests). */
  | { op: 'track'; mode: MigrationMode }
  | { op: 'arm' }
  /**
   * The next pages to send, every round in slices of at most `maxPages` pages (round 0: all non-zero pages, or
   * with `fromParent` only the pages written since the instance was forked from its parent, where it can tell).
   * `reuse`: a slice's buffer handed back once sent, to read this one into (no new buffer, so no garbage).
   */
  | { op: 'round'; maxPages?: number; fromParent?: boolean; reuse?: ArrayBuffer }
  /** The last dirty pages and the globals; tracking stops. */
  | { op: 'final'; fromParent?: boolean; reuse?: ArrayBuffer }
  | { op: 'untrack' }
  /**
   * Target: make an instance of `key` (no on_restore) of memoryBytes. `fromParent`: the source sends only the
   * pages that differ from this key's snapshot, the rest stays; else round 0 is the whole content (see settle).
   */
  | { op: 'receive'; key: string; memoryBytes: number; fromParent?: boolean }
  | { op: 'apply'; pages: Uint32Array; bytes: Uint8Array; memoryBytes?: number }
  /** Target: round 0 is all here; clear the key's snapshot pages it did not cover (zero on the source). */
  | { op: 'settle' }
  /** The globals, after the last pages if given (one message for the end of a migration). */
  | { op: 'finish'; globals: Record<string, GlobalValue>; last?: { pages: Uint32Array; bytes: Uint8Array; memoryBytes: number } }
  | { op: 'hash' }
  /** Target side (its thread serves nothing of the instance yet), after round 0: a full garbage collection, so that none falls into the pause. */
  | { op: 'quiesce' };

export type MigrationOpResult =
  /**
   * `fromParent`: the instance can tell the pages it wrote since it was forked (round 0 may send only those);
   * `armed`: tracking covers its whole range (else `arm` again). Final once armed.
   */
  | { op: 'tracked'; fromParent: boolean; memoryBytes: number; armed: boolean }
  /** `more`: the round is not complete yet (read the next slice); `left`: its pages still to read after this slice (later rounds). */
  | { op: 'round'; pages: Uint32Array; bytes: Uint8Array; memoryBytes: number; more: boolean; left?: number }
  /** `readMs`: the dirty scan and copy in the thread. */
  | { op: 'final'; pages: Uint32Array; bytes: Uint8Array; memoryBytes: number; globals: Record<string, GlobalValue>; readMs: number }
  | { op: 'hash'; hash: string; memoryBytes: number }
  | { op: 'done' };

/**
 * Write protection is armed this many bytes at a time, each step a job of the instance's thread between two of
 * its requests: arming 512 MiB at once held the thread 3-25 ms (and a request behind it), a step of 32 MiB
 * reads its own pages and protects them in well under a millisecond.
 */
export const ARM_STEP_BYTES = 32 * 1024 * 1024;

/** The tracking state of one instance's memory in its thread. */
export class DirtyTracker {
  private trackerId: number | undefined;
  /** Bytes from the memory's start that tracking covers; pages past it (the memory grew that far) count as written at every collection. */
  private trackedBytes = Infinity;
  /** Bytes from the memory's start write-protected so far (arm): tracking is of use once it covers trackedBytes. */
  private armedBytes = 0;
  /** Pages of the current round after round 0 collected and not read yet (later slices of it). */
  private pending: number[] = [];
  /** For 'compare': the memory as last sent. */
  private lastSent: Uint8Array | undefined;
  /** Bytes of memory covered by the rounds so far (a grown memory's new pages are sent whole). */
  private sentBytes = 0;
  /** Rounds completed. */
  private rounds = 0;
  /** Round 0: the next page to scan (or, from the parent, the next index into `ownPages`). */
  private fullCursor = 0;
  /**
   * The pages a copy-on-write clone had written since its fork when tracking of each step's part began (its own,
   * not file-backed), step by step: every other page below `ownBytes` still holds the parent's bytes, or was
   * written after its part was armed (tracking has it). Undefined where the pager cannot tell.
   */
  private ownParts: Uint32Array[] | undefined;
  private ownPagesRead: Uint32Array | undefined;
  private readonly ownBytes: number;
  /** Round 0 sends only `ownPages` (decided at its first slice). */
  private fromParent = false;

  /**
   * `maximumBytes`: the most the memory may grow to (tracking covers part of it: trackedBytesFor). `cowClone`: the
   * memory maps its parent's snapshot copy-on-write, so its own pages are its diff against it.
   */
  constructor(
    private readonly memory: WebAssembly.Memory,
    readonly mode: MigrationMode,
    private readonly pager: NativePager | undefined,
    maximumBytes: number,
    cowClone = false,
  ) {
    this.ownBytes = memory.buffer.byteLength;
    if (mode !== 'compare') {
      if (!pager) throw new Error(`'${mode}' dirty tracking needs the native pager`);
      this.ownParts = cowClone ? [] : undefined;
      this.trackedBytes = trackedBytesFor(memory.buffer.byteLength, maximumBytes);
      // Registered, nothing protected yet: `arm` protects it step by step.
      this.trackerId = pager.trackDirty(memory, this.trackedBytes, mode, 0);
    }
  }

  /**
   * Arms the next `stepBytes` of tracking; true once all is armed. Each step first reads the own pages of its
   * part, then protects it, in one go on the instance's thread: nothing writes in between, so a page written
   * before its part was armed is its own (round 0 sends it) and one written after is tracked. (Write protection
   * marks unpopulated pages, which a scan after it would count as own; and only this thread can know that no
   * write falls between the two, so arming runs here, in steps, not on another thread.) Past `ownBytes` nothing
   * is read and the rest is armed at once (it holds no pages unless the memory grew meanwhile: protecting 256 MiB
   * of it took 0.3 ms); the first later round sends every non-zero page there.
   */
  arm(stepBytes = ARM_STEP_BYTES): boolean {
    if (this.trackerId === undefined) return true;
    const from = this.armedBytes;
    const to = from < this.ownBytes ? Math.min(this.trackedBytes, from + stepBytes) : this.trackedBytes;
    if (this.ownParts && from < this.ownBytes) {
      try {
        this.ownParts.push(this.pager!.privatePages(this.memory, Math.min(to, this.ownBytes) - from, from));
      } catch {
        // The pager cannot tell (no PAGEMAP_SCAN): round 0 sends every non-zero page.
        this.ownParts = undefined;
      }
    }
    this.armedBytes = this.pager!.armDirty(this.trackerId, to - from);
    return this.armed;
  }

  get armed(): boolean {
    return this.trackerId === undefined || this.armedBytes >= this.trackedBytes;
  }

  /** Whether round 0 can send only the pages written since the fork. */
  get canDiff(): boolean {
    return this.ownParts !== undefined;
  }

  private get ownPages(): Uint32Array | undefined {
    if (!this.ownParts) return undefined;
    if (!this.ownPagesRead) {
      const all = new Uint32Array(this.ownParts.reduce((n, p) => n + p.length, 0));
      let at = 0;
      for (const part of this.ownParts) {
        all.set(part, at);
        at += part.length;
      }
      this.ownPagesRead = all;
    }
    return this.ownPagesRead;
  }

  /**
   * Round 0: every non-zero page — or with `fromParent`, where the clone can
   * tell, only its own pages; later: the pages written since the previous
   * round. Each in slices of at most `maxPages` pages (`more` until the round
   * is complete): the instance serves between slices, and tracking catches
   * what they write meanwhile. The bytes go into `reuse` when it is large
   * enough (a buffer handed back), else into a new buffer.
   */
  round(maxPages = Infinity, fromParent = false, reuse?: ArrayBuffer): { pages: Uint32Array; bytes: Uint8Array; memoryBytes: number; more: boolean; left?: number } {
    if (!this.armed) throw new Error('dirty tracking is not armed yet');
    const view = new Uint8Array(this.memory.buffer);
    const count = view.length / PAGE_SIZE;
    const pages: number[] = [];
    if (this.rounds === 0 && this.fullCursor === 0) this.fromParent = fromParent && this.ownPages !== undefined;
    const roundZero = this.rounds === 0;
    if (this.rounds === 0 && this.fromParent) {
      // Tracking has every write since it was armed (never reset in this round): the last slice adds them.
      const own = this.ownPages!;
      const end = Math.min(own.length, this.fullCursor + maxPages);
      for (let i = this.fullCursor; i < end; i++) pages.push(own[i]!);
      if (maxPages === Infinity) {
        const listed = new Set(pages);
        for (const p of this.written(view, count)) if (!listed.has(p)) pages.push(p);
      }
      this.fullCursor = end;
      if (end === own.length) this.rounds = 1;
    } else if (this.rounds === 0) {
      // Read whole while round 0 is under way (stop-and-copy in the middle of it): the part scanned already is sent as a later round would.
      if (this.fullCursor > 0 && maxPages === Infinity) pages.push(...this.written(view, this.fullCursor));
      else if (this.fullCursor === 0 && this.trackerId !== undefined) this.pager!.collectDirty(this.trackerId, this.memory);
      const end = Math.min(count, this.fullCursor + maxPages);
      for (let p = this.fullCursor; p < end; p++) if (!isZero(view, p)) pages.push(p);
      this.fullCursor = end;
      if (end === count) this.rounds = 1;
    } else {
      // A new round, or the last read (which must leave nothing behind): what was written since the last collection.
      if (this.pending.length === 0 || maxPages === Infinity) {
        if (this.pending.length === 0) this.rounds++;
        const firstNew = this.sentBytes / PAGE_SIZE;
        const listed = new Set(this.pending);
        for (const p of this.written(view, firstNew)) if (!listed.has(p)) this.pending.push(p);
        // Pages past what was covered before (the memory grew): send the non-zero ones.
        for (let p = firstNew; p < count; p++) if (!listed.has(p) && !isZero(view, p)) this.pending.push(p);
        // Covered from now on, the pages still pending included (tracking has what is written after this).
        this.sentBytes = view.length;
      }
      pages.push(...this.pending.splice(0, maxPages));
    }
    const size = pages.length * PAGE_SIZE;
    const bytes = reuse && reuse.byteLength >= size ? new Uint8Array(reuse, 0, size) : new Uint8Array(size);
    pages.forEach((p, i) => bytes.set(view.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE), i * PAGE_SIZE));
    if (this.mode === 'compare') {
      if (!this.lastSent || this.lastSent.length !== view.length) {
        const grown = new Uint8Array(view.length);
        if (this.lastSent) grown.set(this.lastSent);
        this.lastSent = grown;
      }
      const last = this.lastSent;
      pages.forEach((p, i) => last.set(bytes.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE), p * PAGE_SIZE));
    }
    if (roundZero) {
      // From the parent, what round 0 covers is the memory as it was when tracking began; past it, pages are new.
      if (this.rounds === 0) this.sentBytes = this.fromParent ? 0 : this.fullCursor * PAGE_SIZE;
      else this.sentBytes = this.fromParent ? this.ownBytes : view.length;
    }
    const more = this.rounds === 0 || this.pending.length > 0;
    // A later round's size is known at its first slice: the dirtying rate that pacing needs (precopy.ts nextRate).
    return { pages: Uint32Array.from(pages), bytes, memoryBytes: view.length, more, ...(roundZero ? {} : { left: this.pending.length }) };
  }

  /** Pages below `upTo` written since they were last sent (or, past what tracking covers, maybe written). */
  private written(view: Uint8Array, upTo: number): number[] {
    const pages: number[] = [];
    if (this.trackerId !== undefined) {
      for (const p of this.pager!.collectDirty(this.trackerId, this.memory)) if (p < upTo) pages.push(p);
      for (let p = this.trackedBytes / PAGE_SIZE; p < upTo; p++) pages.push(p);
    } else {
      const last = this.lastSent!;
      for (let p = 0; p < upTo; p++) if (!samePage(view, last, p)) pages.push(p);
    }
    return pages;
  }

  stop(): void {
    if (this.trackerId !== undefined) this.pager!.stopTracking(this.trackerId);
    this.trackerId = undefined;
    this.lastSent = undefined;
  }
}

/**
 * How much of a memory of `bytes` to track, at most `maximumBytes`: twice its size, at least 64 MiB more.
 * Arming write protection costs about 6 ms a GiB of populated range in the instance's thread (24 ms for the 4 GiB a
 * wasm32 memory may grow to), in steps between its requests (ARM_STEP_BYTES); a memory that grows past the range
 * has the pages past it sent at every collection instead (correct, only more bytes).
 */
export function trackedBytesFor(bytes: number, maximumBytes: number): number {
  const wanted = Math.max(2 * bytes, bytes + 64 * 1024 * 1024);
  return Math.max(bytes, Math.min(maximumBytes, Math.ceil(wanted / WASM_PAGE_SIZE) * WASM_PAGE_SIZE));
}

// 32-bit words: 64-bit ones would be BigInts, several times slower to read.
function isZero(view: Uint8Array, page: number): boolean {
  const words = new Int32Array(view.buffer, view.byteOffset + page * PAGE_SIZE, PAGE_SIZE / 4);
  for (let i = 0; i < words.length; i++) if (words[i] !== 0) return false;
  return true;
}

function samePage(view: Uint8Array, last: Uint8Array, page: number): boolean {
  const a = new Int32Array(view.buffer, view.byteOffset + page * PAGE_SIZE, PAGE_SIZE / 4);
  const b = new Int32Array(last.buffer, last.byteOffset + page * PAGE_SIZE, PAGE_SIZE / 4);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The instance's mutable globals, by export name. */
export function readGlobals(instance: WebAssembly.Instance): Record<string, GlobalValue> {
  const globals: Record<string, GlobalValue> = {};
  for (const [name, value] of Object.entries(instance.exports)) if (name.startsWith('__flurry_global_') && value instanceof WebAssembly.Global) globals[name] = value.value as GlobalValue;
  return globals;
}

export function writeGlobals(instance: WebAssembly.Instance, globals: Record<string, GlobalValue>): void {
  for (const [name, value] of Object.entries(globals)) {
    const global = instance.exports[name];
    if (!(global instanceof WebAssembly.Global)) throw new Error(`the instance has no global ${name}`);
    global.value = value;
  }
}

/** Grows the memory to at least `bytes` (received pages may lie past its size). */
export function growAtLeast(memory: WebAssembly.Memory, bytes: number): void {
  const have = memory.buffer.byteLength;
  if (bytes > have) memory.grow(Math.ceil((bytes - have) / WASM_PAGE_SIZE));
}

export function applyPages(memory: WebAssembly.Memory, pages: Uint32Array, bytes: Uint8Array, memoryBytes?: number): void {
  if (bytes.length !== pages.length * PAGE_SIZE) throw new Error(`${pages.length} pages need ${pages.length * PAGE_SIZE} bytes, got ${bytes.length}`);
  let end = memoryBytes ?? 0;
  for (const p of pages) end = Math.max(end, (p + 1) * PAGE_SIZE);
  growAtLeast(memory, end);
  const view = new Uint8Array(memory.buffer);
  pages.forEach((p, i) => view.set(bytes.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE), p * PAGE_SIZE));
}

/**
 * Zeroes every non-zero page of the memory not marked in `received` (one
 * byte per page): a received instance starts from its key's snapshot, and
 * round 0 sends every non-zero page of the source, so once round 0 is in only
 * the snapshot's pages the source has zeroed need clearing — the rest was
 * overwritten, and copy-on-write pages that are read only are never copied.
 */
export function zeroUnreceived(memory: WebAssembly.Memory, received: Uint8Array): void {
  const view = new Uint8Array(memory.buffer);
  const count = view.length / PAGE_SIZE;
  for (let p = 0; p < count; p++) if (!received[p] && !isZero(view, p)) view.fill(0, p * PAGE_SIZE, (p + 1) * PAGE_SIZE);
}

export function hashMemory(memory: WebAssembly.Memory): string {
  return createHash('sha256').update(new Uint8Array(memory.buffer)).digest('hex');
}
