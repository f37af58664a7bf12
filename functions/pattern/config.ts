// The pattern's settings: from the init input, overridden per clone by the
// clone input (run) or the query (handle). Inputs are JSON objects such as
// {"mib": 64, "verify": "slice", "seed": 7}, or a bare decimal number meaning
// {"mib": N}. Empty input keeps the current settings.

import { INVALID_INT, parseIntStrict, parseJson } from "../lib";

export const enum Verify {
  /** The whole region, before writing. */
  All,
  /** Only this clone's slice. */
  Slice,
  /** Nothing. */
  None,
}

export class Config {
  mib: i32 = 16;
  verify: Verify = Verify.All;
  seed: u64 = 0;
  /** Whether the clone writes its own pattern over its slice. */
  write: bool = true;
  /** With verify "all": the leading fraction of the region that is verified (0 to 1). */
  share: f64 = 1.0;
}

export function verifyName(v: Verify): string {
  return v == Verify.All ? "all" : v == Verify.Slice ? "slice" : "none";
}

/** Verify mode by name, or -1. */
export function verifyByName(name: string): i32 {
  if (name == "all") return Verify.All;
  if (name == "slice") return Verify.Slice;
  if (name == "none") return Verify.None;
  return -1;
}

/** Applies an input to `config`; returns an error message or "". */
export function applyInput(config: Config, bytes: Uint8Array): string {
  let text = String.UTF8.decodeUnsafe(bytes.dataStart, <usize>bytes.length).trim();
  if (text.length == 0) return "";
  let n = parseIntStrict(text);
  if (n != INVALID_INT) {
    config.mib = <i32>n;
    return "";
  }
  let parsed = parseJson(bytes);
  if (!parsed.ok) return "input is neither a number nor JSON: " + parsed.error;
  let obj = parsed.unwrap();
  if (!obj.isObject) return "input must be a JSON object";
  let mib = obj.get("mib");
  if (mib !== null) {
    if (!mib.isNumber || mib.num < 0 || mib.num != Math.floor(mib.num)) return "mib must be a non-negative integer";
    config.mib = <i32>mib.num;
  }
  let verify = obj.get("verify");
  if (verify !== null) {
    let v = verify.isString ? verifyByName(verify.str) : -1;
    if (v < 0) return "verify must be all, slice or none";
    config.verify = <Verify>v;
  }
  let seed = obj.get("seed");
  if (seed !== null) {
    if (!seed.isNumber || seed.num < 0 || seed.num != Math.floor(seed.num) || seed.num > 4294967295) {
      return "seed must be an integer from 0 to 2^32-1";
    }
    config.seed = <u64>seed.num;
  }
  let share = obj.get("share");
  if (share !== null) {
    if (!share.isNumber || !(share.num >= 0 && share.num <= 1)) return "share must be a number from 0 to 1";
    config.share = share.num;
  }
  let write = obj.get("write");
  if (write !== null) {
    if (!write.isBool) return "write must be true or false";
    config.write = write.boolValue;
  }
  return "";
}

/** A copy, so per-call overrides do not touch the snapshot's settings. */
export function copyConfig(c: Config): Config {
  let d = new Config();
  d.mib = c.mib;
  d.verify = c.verify;
  d.seed = c.seed;
  d.write = c.write;
  d.share = c.share;
  return d;
}

