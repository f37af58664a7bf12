// quant: Monte Carlo option pricing as a fork-join job (functions/README.md
// has the formats; spec.ts the init input, sim.ts the generator and the sums).
//
//   init()        reads the spec (JSON), checks the generator against its
//                 known answer and precomputes the drift, the diffusion per
//                 step and the discount factor: the warm state
//   on_restore()  nothing: every random number is a function of (seed, path)
//   run(i, n)     simulates paths [i·⌊N/n⌋, (i+1)·⌊N/n⌋) (the last clone up to
//                 N), reports progress, outputs its sums as tree nodes
//   run_task(t, T) the same for block t of T (a job with `tasks`: the host
//                 calls it for each task a clone takes; the host counts tasks,
//                 so no progress); the blocks are equal work, every path
//                 costs the same
//   reduce(n)     completes the sums of the n clones' or tasks' outputs, in
//                 order: price, standard error
//   handle()      the whole price in one instance (the body, if any, is a
//                 spec replacing the init input); ?index=i&count=n answers
//                 what run(i, n) would output

import {
  badRequest, JsonValue, JsonWriter, monotonicMs, parseJson, readInput, readReduceInput, requestQuery, setContentType,
  setStatus, writeOutputWriter, INVALID_INT,
} from "../lib";
import { philoxSelfTest } from "./philox";
import { combine, Node, simulate } from "./sim";
import { kindName, parseSpec, Spec } from "./spec";

// The warm state, in the snapshot.
let spec = new Spec();

export function init(): void {
  if (!philoxSelfTest()) throw new Error("quant init: Philox4x32-10 fails its known-answer test");
  let error = parseSpec(spec, readInput());
  if (error.length > 0) throw new Error("quant init: " + error);
}

export function on_restore(): void {}

export function run(index: i32, count: i32): i32 {
  writeOutputWriter(cloneOutput(spec, index, count, true).out);
  return 0;
}

export function run_task(task: i32, tasks: i32): i32 {
  writeOutputWriter(cloneOutput(spec, task, tasks, false).out);
  return 0;
}

export function reduce(count: i32): i32 {
  let parts = readReduceInput(count);
  let nodes = new Array<Node>();
  for (let i = 0; i < parts.length; i++) readNodes(parts[i], i, nodes);
  writeOutputWriter(result(spec, nodes, count).out);
  return 0;
}

export function handle(): i32 {
  setContentType("application/json");
  let s = spec;
  let body = readInput();
  if (body.length > 0) {
    s = new Spec();
    let error = parseSpec(s, body);
    if (error.length > 0) return badRequest(error);
  }
  let q = requestQuery();
  if (q.has("index") || q.has("count")) {
    let index = q.getInt("index", 0);
    let count = q.getInt("count", 1);
    if (index == INVALID_INT || count == INVALID_INT || count < 1 || count > 1 << 20 || index < 0 || index >= count) {
      return badRequest("index must be an integer in [0, count), count from 1 to 2^20");
    }
    writeOutputWriter(cloneOutput(s, <i32>index, <i32>count, false).out);
    return 0;
  }
  writeOutputWriter(result(s, simulate(s, 0, s.paths, false), 1).out);
  return 0;
}

/** Paths [first, end) of clone `index` of `count`. */
function share(paths: u64, index: i32, count: i32, end: bool): u64 {
  let each = paths / <u64>count;
  if (end) return index == count - 1 ? paths : (<u64>index + 1) * each;
  return <u64>index * each;
}

/** {"index","count","first","paths","sum","sumSquares","nodes":[[level,pos,sum,sumSq],...],"ms"} */
function cloneOutput(s: Spec, index: i32, count: i32, reports: bool): JsonWriter {
  let from = share(s.paths, index, count, false);
  let to = share(s.paths, index, count, true);
  let started = monotonicMs();
  let nodes = simulate(s, from, to, reports);
  let ms = monotonicMs() - started;
  let sum: f64 = 0;
  let sumSq: f64 = 0;
  for (let i = 0; i < nodes.length; i++) {
    sum += nodes[i].sum;
    sumSq += nodes[i].sumSq;
  }
  let w = new JsonWriter();
  w.beginObject();
  w.key("index").int(index);
  w.key("count").int(count);
  w.key("first").int(<i64>from);
  w.key("paths").int(<i64>(to - from));
  w.key("sum").number(sum);
  w.key("sumSquares").number(sumSq);
  w.key("nodes").beginArray();
  for (let i = 0; i < nodes.length; i++) {
    let n = nodes[i];
    w.beginArray().int(n.level).int(<i64>n.pos).number(n.sum).number(n.sumSq).endArray();
  }
  w.endArray();
  w.key("ms").number(Math.round(ms * 1000) / 1000);
  w.endObject();
  return w;
}

/** Adds the nodes of clone output `i` to `into`; throws on a malformed output. */
function readNodes(bytes: Uint8Array, i: i32, into: Node[]): void {
  let parsed = parseJson(bytes);
  if (!parsed.ok) throw new Error("quant reduce: output " + i.toString() + " is not JSON: " + parsed.error);
  let out = parsed.unwrap();
  let index = out.isObject ? out.get("index") : null;
  let nodes = out.isObject ? out.get("nodes") : null;
  if (index === null || !index.isNumber || index.num != <f64>i || nodes === null || !nodes.isArray) {
    throw new Error("quant reduce: output " + i.toString() + " is not clone " + i.toString() + "'s nodes");
  }
  for (let k = 0; k < nodes.length; k++) {
    let n = nodes.at(k);
    if (!n.isArray || n.length != 4 || !isInt(n.at(0)) || !isInt(n.at(1)) || !n.at(2).isNumber || !n.at(3).isNumber) {
      throw new Error("quant reduce: output " + i.toString() + " has a malformed node");
    }
    into.push(new Node(<i32>n.at(0).num, <u64>n.at(1).num, n.at(2).num, n.at(3).num));
  }
}

function isInt(v: JsonValue): bool {
  return v.isNumber && v.num >= 0 && v.num <= 9007199254740991 && v.num == Math.floor(v.num);
}

/** {"option","price","stdError","paths","clones","antithetic","seed","sum","sumSquares"} */
function result(s: Spec, nodes: Node[], clones: i32): JsonWriter {
  let t = combine(nodes, s.paths);
  let n = <f64>s.paths;
  let mean = t.sum / n;
  // Sample variance; the standard error of the mean is sqrt(var / n).
  let variance = n > 1 ? max<f64>(0, (t.sumSq - t.sum * mean) / (n - 1)) : 0;
  let w = new JsonWriter();
  w.beginObject();
  w.key("option").string(kindName(s.kind));
  w.key("price").number(mean);
  w.key("stdError").number(Math.sqrt(variance / n));
  w.key("paths").int(<i64>s.paths);
  w.key("clones").int(clones);
  w.key("antithetic").bool(s.antithetic);
  w.key("steps").int(s.isAsian ? s.steps : 1);
  w.key("seed").int(<i64>s.seed);
  w.key("sum").number(t.sum);
  w.key("sumSquares").number(t.sumSq);
  w.endObject();
  return w;
}
