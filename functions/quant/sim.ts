// The simulation and the summation.
//
// Sample p (p = 0 .. paths-1, the global path index) is the discounted payoff
// of path p, made from Philox4x32-10 keyed by the seed with counter
// (p lo, p hi, j, 0): call j gives two uniforms and, by Box-Muller, the
// normals 2j and 2j+1 of the path. European options draw S_T exactly
// (one normal); Asian options walk `steps` log-normal steps and average the
// prices at the ends of the steps (S_0 not included). With antithetic
// variates a sample is the mean of the payoffs of the path and of its mirror
// (every normal negated).
//
// Sums are canonical pairwise sums over the global path index: the binary
// tree whose leaves are samples 0 .. 2^L-1 (those at or past `paths` are 0)
// and whose node (l, q) is node(l-1, 2q) + node(l-1, 2q+1). A clone sums the
// largest aligned subtrees inside its range of paths and outputs them as
// nodes; reduce completes the tree. The sum is the same double whatever the
// split: the price does not depend on the number of clones.

import { philox, out0, out1, out2, out3 } from "./philox";
import { Spec } from "./spec";
import { reportProgress } from "../lib";

const TWO_PI: f64 = 6.283185307179586;
const TWO_M53: f64 = 1.0 / 9007199254740992.0;

/** A node of the summation tree: leaves [pos·2^level, (pos+1)·2^level). */
export class Node {
  constructor(public level: i32, public pos: u64, public sum: f64, public sumSq: f64) {}
  get first(): u64 { return this.pos << <u64>this.level; }
  get size(): u64 { return (<u64>1) << <u64>this.level; }
}

let z0: f64 = 0;
let z1: f64 = 0;

/** Normals 2j and 2j+1 of path p into z0, z1. */
// @ts-ignore: decorator
@inline
function normals(spec: Spec, p: u64, j: u32): void {
  philox(<u32>p, <u32>(p >> 32), j, 0, spec.key0, spec.key1);
  // Two 53-bit uniforms; u1 in (0, 1] so the log is finite.
  let u1 = <f64>(((<u64>out0 << 21) | (<u64>out1 >> 11)) + 1) * TWO_M53;
  let u2 = <f64>((<u64>out2 << 21) | (<u64>out3 >> 11)) * TWO_M53;
  let r = Math.sqrt(-2.0 * Math.log(u1));
  let t = TWO_PI * u2;
  z0 = r * Math.cos(t);
  z1 = r * Math.sin(t);
}

// @ts-ignore: decorator
@inline
function payoff(spec: Spec, price: f64): f64 {
  let x = spec.isCall ? price - spec.strike : spec.strike - price;
  return x > 0 ? x : 0;
}

/** The discounted payoff of path p (with sign +1 or -1 on every normal). */
function pathPayoff(spec: Spec, p: u64, sign: f64): f64 {
  if (!spec.isAsian) {
    normals(spec, p, 0);
    let st = spec.spot * Math.exp(spec.driftT + spec.volT * sign * z0);
    return spec.discount * payoff(spec, st);
  }
  let steps = spec.steps;
  let s = spec.spot;
  let total: f64 = 0;
  for (let k = 0; k < steps; k++) {
    let z: f64;
    if ((k & 1) == 0) {
      normals(spec, p, <u32>(k >> 1));
      z = z0;
    } else {
      z = z1;
    }
    s *= Math.exp(spec.driftStep + spec.volStep * sign * z);
    total += s;
  }
  return spec.discount * payoff(spec, total / <f64>steps);
}

/** Sample p: the discounted payoff, or the antithetic pair's mean. */
// @ts-ignore: decorator
@inline
export function sample(spec: Spec, p: u64): f64 {
  let a = pathPayoff(spec, p, 1.0);
  if (!spec.antithetic) return a;
  return 0.5 * (a + pathPayoff(spec, p, -1.0));
}

const stackSum = new StaticArray<f64>(65);
const stackSq = new StaticArray<f64>(65);

/** Reports progress every `every` samples when `every` > 0. */
class Progress {
  done: u64 = 0;
  countdown: u64 = 0;
  constructor(public total: u64, public every: u64) { this.countdown = every; }
  // @ts-ignore: decorator
  @inline tick(): void {
    if (this.every == 0) return;
    if (--this.countdown == 0) {
      this.done += this.every;
      this.countdown = this.every;
      this.report();
    }
  }
  report(): void {
    // Progress counts in units small enough for an i32.
    let unit = max<u64>(1, this.total >> 30);
    reportProgress(<i32>(this.done / unit), <i32>(this.total / unit));
  }
}

/** The aligned block [first, first + 2^level), summed pairwise in tree order. */
function block(spec: Spec, first: u64, level: i32, progress: Progress): Node {
  let n: u64 = (<u64>1) << <u64>level;
  for (let i: u64 = 0; i < n; i++) {
    let v = sample(spec, first + i);
    let v2 = v * v;
    // Binary-counter cascade: after leaf i, stack[l] holds the node of level l
    // that is still waiting for its right sibling.
    let t = i;
    let l = 0;
    while ((t & 1) != 0) {
      v = unchecked(stackSum[l]) + v;
      v2 = unchecked(stackSq[l]) + v2;
      t >>= 1;
      l++;
    }
    unchecked(stackSum[l] = v);
    unchecked(stackSq[l] = v2);
    progress.tick();
  }
  return new Node(level, first >> <u64>level, unchecked(stackSum[level]), unchecked(stackSq[level]));
}

/** Simulates paths [from, to) as the largest aligned subtrees, in order. */
export function simulate(spec: Spec, from: u64, to: u64, reports: bool): Node[] {
  let nodes = new Array<Node>();
  let total = to - from;
  let progress = new Progress(total, reports ? max<u64>(1, total / 16) : 0);
  let a = from;
  while (a < to) {
    let level = a == 0 ? 63 : <i32>ctz(a);
    while (level > 0 && ((<u64>1) << <u64>level) > to - a) level--;
    nodes.push(block(spec, a, level, progress));
    a += (<u64>1) << <u64>level;
  }
  if (reports && progress.done < total) {
    progress.done = total;
    progress.report();
  }
  return nodes;
}

/** The sum of the samples and of their squares. */
export class Totals {
  sum: f64 = 0;
  sumSq: f64 = 0;
}

/** The canonical sums over `paths` samples from nodes that cover [0, paths)
 * exactly once (checked: a gap or an overlap throws). */
export function combine(nodes: Node[], paths: u64): Totals {
  // Sort by first path, check the cover, then fold with the tree.
  let sorted = nodes.slice(0);
  sorted.sort((a: Node, b: Node): i32 => (a.first < b.first ? -1 : a.first > b.first ? 1 : 0));
  let at: u64 = 0;
  for (let i = 0; i < sorted.length; i++) {
    let n = sorted[i];
    if (n.level < 0 || n.level > 62 || n.first != at) {
      throw new Error("quant: the clone outputs do not cover paths 0.." + paths.toString() + " once (at path " + at.toString() + ")");
    }
    at += n.size;
  }
  if (at != paths) throw new Error("quant: the clone outputs cover " + at.toString() + " paths, expected " + paths.toString());
  let levels = 0;
  while (((<u64>1) << <u64>levels) < paths) levels++;
  let totals = new Totals();
  let cursor = new Cursor(sorted);
  tree(cursor, levels, 0, paths, totals);
  return totals;
}

class Cursor {
  i: i32 = 0;
  constructor(public nodes: Node[]) {}
}

/** Node (level, pos) of the canonical tree into `out`, taking given nodes in order. */
function tree(c: Cursor, level: i32, pos: u64, paths: u64, out: Totals): void {
  let first = pos << <u64>level;
  if (first >= paths) { out.sum = 0; out.sumSq = 0; return; }
  if (c.i < c.nodes.length) {
    let n = c.nodes[c.i];
    if (n.level == level && n.pos == pos) {
      c.i++;
      out.sum = n.sum;
      out.sumSq = n.sumSq;
      return;
    }
  }
  if (level == 0) throw new Error("quant: path " + first.toString() + " is missing");
  tree(c, level - 1, pos << 1, paths, out);
  let ls = out.sum;
  let lq = out.sumSq;
  tree(c, level - 1, (pos << 1) | 1, paths, out);
  out.sum = ls + out.sum;
  out.sumSq = lq + out.sumSq;
}
