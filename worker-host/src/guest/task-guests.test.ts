/**
 * The guests that split a job into tasks (quant, render, blast) run in process, from a real parent snapshot:
 * run_task for every task of T in one instance, and again in shuffled order over fresh instances, each
 * reduced in task order, must give run(0, 1) + reduce(1) byte for byte, and the static split must too.
 */
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { frameReduceInput, rewriteForSnapshot } from '@flurry/core';
import { CallContext } from './call-context.js';
import { CurrentCall } from './current-call.js';
import { buildImportObject, hostFunctions } from './import-object.js';
import { CloneFactory, makeWarmParent, runOnRestore, takeSnapshot } from './instance.js';

const BUILD = new URL('../../../functions/build/', import.meta.url);
const EXAMPLES = new URL('../../../functions/examples/', import.meta.url);
const has = (name: string) => existsSync(new URL(`${name}.wasm`, BUILD));
const program = (name: string) => new Uint8Array(readFileSync(new URL(`${name}.wasm`, BUILD)));
const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);
const LIMITS = { maxOutputBytes: 16 * 1024 * 1024, maxLogLines: 64, maxLogBytes: 65536 };

/** A warm parent of one guest, snapshotted; calls run on clones of it, as on a host's guest thread. */
class InProcessGuest {
  private readonly current = new CurrentCall();
  private readonly factory: CloneFactory;

  constructor(module: Uint8Array, initInput: Uint8Array) {
    const { parent, clone } = rewriteForSnapshot(module);
    const host = hostFunctions(this.current);
    const parentModule = new WebAssembly.Module(parent as BufferSource);
    const cloneModule = new WebAssembly.Module(clone as BufferSource);
    const warm = this.begin(initInput);
    const instance = makeWarmParent(parentModule, buildImportObject(parentModule, host), this.current.memory);
    this.end(warm, 0, 'init');
    this.factory = new CloneFactory(cloneModule, buildImportObject(cloneModule, host), takeSnapshot(instance, undefined), undefined);
  }

  /** A fresh clone with on_restore run: the instance a clone of a job gets. */
  fresh(): WebAssembly.Instance {
    const context = this.begin(new Uint8Array(0));
    const { instance, memory } = this.factory.instantiate(this.current.memory);
    this.current.memory.attach(memory);
    runOnRestore(instance);
    this.end(context, 0, 'on_restore');
    return instance;
  }

  /** Calls `entry(...args)` on `instance` with `input`; its output, or a throw with the guest's status, failure and logs. */
  call(instance: WebAssembly.Instance, entry: string, args: number[], input: Uint8Array): Uint8Array {
    const context = this.begin(input);
    this.current.memory.attach(instance.exports.memory as WebAssembly.Memory);
    let status: number;
    try {
      status = Number((instance.exports[entry] as (...a: number[]) => unknown)(...args) ?? 0);
    } catch (err) {
      this.end(context, 0, entry);
      throw err;
    }
    return this.end(context, status, `${entry}(${args.join(', ')})`);
  }

  private begin(input: Uint8Array): CallContext {
    const context = new CallContext(input, undefined, LIMITS);
    this.current.begin(context);
    return context;
  }

  private end(context: CallContext, status: number, what: string): Uint8Array {
    context.finish();
    this.current.end();
    if (context.failure || status !== 0) {
      const logs = context.logs.lines.map((l) => l.message).join('\n');
      throw new Error(`${what}: ${context.failure?.message ?? `status ${status}`}\n${logs}`);
    }
    return context.output.take();
  }
}

/** Seeded shuffle (mulberry32), so a failure repeats. */
function shuffled(n: number, seed: number): number[] {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

/**
 * What each way of running the job reduces to: one instance doing run(0, 1); `clones` clones doing run(i, n);
 * T tasks in one instance, in order; T tasks in shuffled order, each group of `perInstance` on a fresh instance.
 */
function results(guest: InProcessGuest, input: Uint8Array, tasks: number, clones: number, perInstance: number) {
  const reduce = (outputs: Uint8Array[]) => guest.call(guest.fresh(), 'reduce', [outputs.length], frameReduceInput(outputs));
  const single = reduce([guest.call(guest.fresh(), 'run', [0, 1], input)]);
  const forked = reduce(Array.from({ length: clones }, (_, i) => guest.call(guest.fresh(), 'run', [i, clones], input)));
  const one = guest.fresh();
  const inOrder = Array.from({ length: tasks }, (_, t) => guest.call(one, 'run_task', [t, tasks], input));
  const outOfOrder: Uint8Array[] = new Array(tasks);
  let instance = guest.fresh();
  shuffled(tasks, tasks * 7919 + clones).forEach((t, k) => {
    if (k > 0 && k % perInstance === 0) instance = guest.fresh();
    outOfOrder[t] = guest.call(instance, 'run_task', [t, tasks], input);
  });
  return { single, forked, tasks: reduce(inOrder), shuffled: reduce(outOfOrder), inOrder, outOfOrder };
}

function expectSameBytes(a: Uint8Array, b: Uint8Array): void {
  expect(Buffer.from(a).equals(Buffer.from(b)), `${a.length} bytes against ${b.length}`).toBe(true);
}

describe.skipIf(!has('quant'))('quant tasks', () => {
  const spec = { spot: 100, strike: 100, rate: 0.05, volatility: 0.2, maturity: 1, steps: 8, paths: 30_011, option: 'asian-call', seed: 7, antithetic: true };
  const guest = has('quant') ? new InProcessGuest(program('quant'), bytes(JSON.stringify(spec))) : undefined!;

  it.each([[24, 3], [7, 2], [1, 1]])('%i tasks reduce to the price of run(0, 1), whatever the order and instances', (tasks, perInstance) => {
    const r = results(guest, new Uint8Array(0), tasks, 5, perInstance);
    const single = JSON.parse(text(r.single)) as Record<string, unknown>;
    expect(single.paths).toBe(spec.paths);
    expect(Number(single.price)).toBeGreaterThan(0);
    // Only `clones` (how many outputs were reduced) may differ; the sums are the very same doubles.
    for (const other of [r.forked, r.tasks, r.shuffled]) expect({ ...(JSON.parse(text(other)) as object), clones: 1 }).toEqual(single);
    // A task's output depends only on (t, T, input): the same bytes in either instance, the timing apart.
    const noMs = (b: Uint8Array) => text(b).replace(/"ms":[0-9.e+-]+/, '');
    expect(r.outOfOrder.map(noMs)).toEqual(r.inOrder.map(noMs));
  });

  it('reduce refuses task outputs out of task order', () => {
    const one = guest.fresh();
    const outputs = [0, 1, 2].map((t) => guest.call(one, 'run_task', [t, 3], new Uint8Array(0)));
    expect(() => guest.call(guest.fresh(), 'reduce', [3], frameReduceInput([outputs[1], outputs[0], outputs[2]]))).toThrow(/output 0 is not clone 0's nodes/);
  });
});

describe.skipIf(!has('render'))('render tasks', () => {
  // The example scene, smaller: 41 rows so that task counts do not divide the height.
  const scene = { ...(JSON.parse(readFileSync(new URL('render.json', EXAMPLES), 'utf8')) as object), width: 48, height: 41, samples: 3 };
  const guest = has('render') ? new InProcessGuest(program('render'), bytes(JSON.stringify(scene))) : undefined!;

  it.each([[16, 4], [41, 5], [50, 7]])('%i tasks make the PNG of run(0, 1), byte for byte, whatever the order and instances', (tasks, perInstance) => {
    const r = results(guest, new Uint8Array(0), tasks, 6, perInstance);
    expect(Buffer.from(r.single.subarray(1, 4)).toString()).toBe('PNG');
    expectSameBytes(r.forked, r.single);
    expectSameBytes(r.tasks, r.single);
    expectSameBytes(r.shuffled, r.single);
    r.inOrder.forEach((out, t) => expectSameBytes(r.outOfOrder[t], out));
  });

  it('reduce refuses a task output given in another place', () => {
    const one = guest.fresh();
    const outputs = [0, 1].map((t) => guest.call(one, 'run_task', [t, 2], new Uint8Array(0)));
    expect(() => guest.call(guest.fresh(), 'reduce', [2], frameReduceInput([outputs[1], outputs[0]]))).toThrow(/output 0 has rows from 1 every 2/);
  });
});

/** Queries cut from the database (both strands, with substitutions) and random ones, seeded. */
function blastQueries(db: string, n: number, random: number): string {
  const seqs = db.split('>').slice(1).map((b) => b.slice(b.indexOf('\n') + 1).replace(/\s+/g, '').toUpperCase());
  let s = 12345;
  const next = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296;
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1));
  const comp: Record<string, string> = { A: 'T', C: 'G', G: 'C', T: 'A' };
  const out: string[] = [];
  for (let q = 0; q < n; q++) {
    const seq = seqs[q % seqs.length];
    const len = int(60, 400);
    const at = int(0, seq.length - len);
    let part = [...seq.slice(at, at + len)].map((c) => (next() < 0.04 ? 'ACGT'[int(0, 3)] : c)).join('');
    if (q % 2 === 1) part = [...part].reverse().map((c) => comp[c] ?? 'N').join('');
    out.push(`>q${q}_${at}\n${part}\n`);
  }
  for (let q = 0; q < random; q++) out.push(`>random${q}\n${Array.from({ length: int(50, 300) }, () => 'ACGT'[int(0, 3)]).join('')}\n`);
  return out.join('');
}

describe.skipIf(!has('blast'))('blast tasks', () => {
  const db = readFileSync(new URL('blast/db.fa', EXAMPLES), 'utf8');
  const guest = has('blast') ? new InProcessGuest(program('blast'), bytes(db)) : undefined!;
  const queries = bytes(blastQueries(db, 30, 4));

  it.each([[34, 4], [100, 9], [8, 3], [1, 1]])('%i tasks (34 queries) make the table of run(0, 1), byte for byte, whatever the order and instances', (tasks, perInstance) => {
    const r = results(guest, queries, tasks, 5, perInstance);
    const table = text(r.single);
    expect(table.split('\n').filter((l) => l.startsWith('q')).length).toBeGreaterThanOrEqual(30);
    expect(table).not.toContain('#');
    expectSameBytes(r.forked, r.single);
    expectSameBytes(r.tasks, r.single);
    expectSameBytes(r.shuffled, r.single);
    r.inOrder.forEach((out, t) => expectSameBytes(r.outOfOrder[t], out));
    // Every query in exactly one task; with at least as many tasks as queries, one query a task at most.
    const owners = r.inOrder.flatMap((out, t) => [...text(out).matchAll(/^# query (\d+)$/gm)].map((m) => [Number(m[1]), t]));
    expect(owners.map(([q]) => q).sort((a, b) => a - b)).toEqual(Array.from({ length: 34 }, (_, q) => q));
    if (tasks >= 34) expect(new Set(owners.map(([, t]) => t)).size).toBe(34);
    expect(text(r.inOrder[0])).toMatch(new RegExp(`^# blast task 0/${tasks}: \\d+ of 34 queries, input [0-9a-f]{16}\\n`));
  });

  it('with a task per query, task 0 holds the query of most estimated work (the longest here)', () => {
    const out = text(guest.call(guest.fresh(), 'run_task', [0, 34], queries));
    const k = Number(/^# query (\d+)$/m.exec(out)![1]);
    const lengths = text(queries).split('>').slice(1).map((b) => b.slice(b.indexOf('\n') + 1).replace(/\s+/g, '').length);
    // Real queries outweigh random ones of any length, and among them the estimate grows with the hits.
    expect(k).toBeLessThan(30);
    expect(lengths[k]).toBeGreaterThan(200);
  });

  it('run_task refuses a task outside [0, tasks); reduce refuses outputs of another task count or input', () => {
    const one = guest.fresh();
    expect(() => guest.call(one, 'run_task', [3, 3], queries)).toThrow(/status 2[\s\S]*must be in \[0, tasks\)/);
    expect(() => guest.call(guest.fresh(), 'run_task', [-1, 3], queries)).toThrow(/status 2/);
    const two = [0, 1].map((t) => guest.call(guest.fresh(), 'run_task', [t, 2], queries));
    const ofThree = guest.call(guest.fresh(), 'run_task', [1, 3], queries);
    expect(() => guest.call(guest.fresh(), 'reduce', [2], frameReduceInput([two[0], ofThree]))).toThrow(/output 1: output is of another part or part count/);
    const other = guest.call(guest.fresh(), 'run_task', [1, 2], bytes(blastQueries(db, 12, 1)));
    expect(() => guest.call(guest.fresh(), 'reduce', [2], frameReduceInput([two[0], other]))).toThrow(/searched another query set/);
  });
});
