// pattern: a parent with a large, known memory image, for testing fork,
// snapshots and lazy memory (pattern.ts defines the pattern, config.ts the
// inputs, functions/README.md the outputs).
//
//   init()        grows a region of `mib` MiB right after the heap (64 KiB
//                 aligned, outside the allocator) and fills it with parent(k)
//   on_restore()  notes that it ran (reported as "restored") and reseeds
//                 Math.random (reported as "mathRandom")
//   run(i, n)     verifies the region (all of it, its slice, or nothing),
//                 writes its own pattern over slice i of n (4 KiB pages split
//                 evenly) and checks it reads back, reads 16 bytes of entropy,
//                 and outputs one JSON object
//   handle()      the same for HTTP, with index/count/verify/write from the query
//   reduce(n)     checks the n clone outputs and summarizes them

import {
  badRequest, JsonWriter, logInfo, monotonicMs, randomBytes, readInput, reseedMathRandom, reportProgress, requestQuery,
  setContentType, setStatus, toHex, u64ToHex, writeOutputWriter, INVALID_INT,
} from "../lib";
import { applyInput, Config, copyConfig, Verify, verifyByName, verifyName } from "./config";
import { Check, checkWords, cloneMask, writeWords } from "./pattern";
import { reduceOutputs } from "./reduce";

const PAGE: u64 = 4096;
const WORDS_PER_MIB: u64 = 131072;

// All of this lives in the snapshot: set by init, seen by every clone.
const settings = new Config();
let regionBase: usize = 0;
let regionBytes: u64 = 0;
let inits: i32 = 0;
let restored = false;

export function init(): void {
  inits++;
  let error = applyInput(settings, readInput());
  if (error.length > 0) throw new Error("pattern init: " + error);
  let pages = settings.mib * 16; // 64 KiB wasm pages
  if (pages > 0) {
    let before = memory.grow(pages);
    if (before < 0) throw new Error("pattern init: cannot grow memory by " + settings.mib.toString() + " MiB");
    regionBase = <usize>before << 16;
  }
  regionBytes = <u64>settings.mib << 20;
  // Draw once so the generator is seeded (env.seed) and its state is in the
  // snapshot: clones then differ only because on_restore reseeds.
  Math.random();
  let started = monotonicMs();
  writeWords(regionBase, settings.seed, 0, 0, regionBytes >> 3);
  logInfo("pattern: wrote " + settings.mib.toString() + " MiB in " + (<i64>(monotonicMs() - started)).toString() + " ms");
}

export function on_restore(): void {
  restored = true;
  reseedMathRandom();
}

export function run(index: i32, count: i32): i32 {
  let config = copyConfig(settings);
  let error = applyInput(config, readInput());
  if (error.length > 0) throw new Error("pattern run: " + error);
  let w = work(index, count, config, true);
  writeOutputWriter(w.out);
  return 0;
}

export function handle(): i32 {
  setContentType("application/json");
  let q = requestQuery();
  let config = copyConfig(settings);
  let index = q.getInt("index", 0);
  let count = q.getInt("count", 1);
  let verify = verifyByName(q.getOr("verify", verifyName(config.verify)));
  let write = q.getOr("write", config.write ? "true" : "false");
  if (index == INVALID_INT || count == INVALID_INT || count < 1 || index < 0 || index >= count ||
      verify < 0 || (write != "true" && write != "false")) {
    return badRequest("index must be in [0, count), verify all|slice|none, write true|false");
  }
  config.verify = <Verify>verify;
  config.write = write == "true";
  let w = work(<i32>index, <i32>count, config, false);
  writeOutputWriter(w.out);
  return 0;
}

export function reduce(count: i32): i32 {
  writeOutputWriter(reduceOutputs(count).out);
  return 0;
}

/** Verifies, writes and reports for clone `index` of `count`. */
function work(index: i32, count: i32, config: Config, reportsProgress: bool): JsonWriter {
  let totalWords = regionBytes >> 3;
  let pages = regionBytes / PAGE;
  let sliceStart = <u64>index * pages / <u64>count * PAGE;
  let sliceEnd = (<u64>index + 1) * pages / <u64>count * PAGE;

  // Verify: the whole region or the slice, in 1 MiB steps with progress.
  let started = monotonicMs();
  let check = new Check();
  let from: u64 = 0;
  let to: u64 = 0;
  if (config.verify == Verify.All) to = <u64>Math.floor(config.share * <f64>pages) * (PAGE >> 3);
  else if (config.verify == Verify.Slice) { from = sliceStart >> 3; to = sliceEnd >> 3; }
  let steps = (to - from + WORDS_PER_MIB - 1) / WORDS_PER_MIB;
  let every = max<u64>(1, steps / 16);
  for (let step: u64 = 0; step < steps; step++) {
    let a = from + step * WORDS_PER_MIB;
    checkWords(regionBase, config.seed, 0, a, min(a + WORDS_PER_MIB, to), check);
    if (reportsProgress && ((step + 1) % every == 0 || step + 1 == steps)) {
      reportProgress(<i32>(step + 1), <i32>steps);
    }
  }
  let verifyMs = monotonicMs() - started;

  // Write this clone's pattern over its slice and read it back.
  started = monotonicMs();
  let writeOk = true;
  if (config.write) {
    let mask = cloneMask(index);
    writeWords(regionBase, config.seed, mask, sliceStart >> 3, sliceEnd >> 3);
    let back = new Check();
    checkWords(regionBase, config.seed, mask, sliceStart >> 3, sliceEnd >> 3, back);
    writeOk = back.mismatches == 0;
  }
  let writeMs = monotonicMs() - started;
  let entropyHex = toHex(randomBytes(16));
  let ok = check.mismatches == 0 && writeOk;
  logInfo("pattern: clone " + index.toString() + "/" + count.toString() + (ok ? " ok" : " FAILED"));

  let w = new JsonWriter();
  w.beginObject();
  w.key("index").int(index);
  w.key("count").int(count);
  w.key("ok").bool(ok);
  w.key("mib").int(<i64>(regionBytes >> 20));
  w.key("regionStart").int(<i64>regionBase);
  w.key("seed").int(<i64>config.seed);
  w.key("verify").string(verifyName(config.verify));
  w.key("verifiedBytes").int(<i64>((to - from) << 3));
  w.key("mismatches").int(check.mismatches);
  w.key("firstMismatch").int(check.firstMismatch);
  w.key("checksum").string(u64ToHex(check.checksum));
  w.key("sliceStart").int(<i64>sliceStart);
  w.key("sliceBytes").int(<i64>(sliceEnd - sliceStart));
  w.key("written").bool(config.write);
  w.key("writeOk").bool(writeOk);
  w.key("entropyHex").string(entropyHex);
  w.key("mathRandom").number(Math.random());
  w.key("restored").bool(restored);
  w.key("inits").int(inits);
  w.key("verifyMs").number(Math.round(verifyMs * 1000) / 1000);
  w.key("writeMs").number(Math.round(writeMs * 1000) / 1000);
  w.endObject();
  return w;
}
