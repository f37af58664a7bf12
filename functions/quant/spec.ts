// The pricing spec (the init input, or handle's body) and the warm state
// derived from it.
//
//   {"spot":100,"strike":100,"rate":0.05,"volatility":0.2,"maturity":1,
//    "steps":12,"paths":1048576,"option":"european-call","seed":0,"antithetic":false}
//
// Every field is optional (the defaults are shown); empty input is all defaults.

import { parseJson, JsonValue } from "../lib";

export const enum Kind { EuropeanCall, EuropeanPut, AsianCall, AsianPut }

export const MAX_PATHS: f64 = 1099511627776; // 2^40
export const MAX_SEED: f64 = 9007199254740991; // 2^53 - 1

export function kindName(k: Kind): string {
  switch (k) {
    case Kind.EuropeanCall: return "european-call";
    case Kind.EuropeanPut: return "european-put";
    case Kind.AsianCall: return "asian-call";
    default: return "asian-put";
  }
}

function kindByName(s: string): i32 {
  if (s == "european-call") return Kind.EuropeanCall;
  if (s == "european-put") return Kind.EuropeanPut;
  if (s == "asian-call") return Kind.AsianCall;
  if (s == "asian-put") return Kind.AsianPut;
  return -1;
}

export class Spec {
  spot: f64 = 100;
  strike: f64 = 100;
  rate: f64 = 0.05;
  volatility: f64 = 0.2;
  maturity: f64 = 1;
  steps: i32 = 12;
  paths: u64 = 1048576;
  kind: Kind = Kind.EuropeanCall;
  seed: u64 = 0;
  antithetic: bool = false;

  // Derived (the warm state): see derive().
  /** (r - σ²/2)·T and σ·√T: the terminal draw of a European option. */
  driftT: f64 = 0;
  volT: f64 = 0;
  /** (r - σ²/2)·Δt and σ·√Δt, Δt = T/steps: one step of an Asian path. */
  driftStep: f64 = 0;
  volStep: f64 = 0;
  /** e^{-rT}. */
  discount: f64 = 0;
  /** The seed as Philox's key. */
  key0: u32 = 0;
  key1: u32 = 0;

  get isAsian(): bool { return this.kind == Kind.AsianCall || this.kind == Kind.AsianPut; }
  get isCall(): bool { return this.kind == Kind.EuropeanCall || this.kind == Kind.AsianCall; }

  derive(): void {
    let half = 0.5 * this.volatility * this.volatility;
    this.driftT = (this.rate - half) * this.maturity;
    this.volT = this.volatility * Math.sqrt(this.maturity);
    let dt = this.maturity / <f64>this.steps;
    this.driftStep = (this.rate - half) * dt;
    this.volStep = this.volatility * Math.sqrt(dt);
    this.discount = Math.exp(-this.rate * this.maturity);
    this.key0 = <u32>this.seed;
    this.key1 = <u32>(this.seed >> 32);
  }
}

function finite(v: JsonValue | null): bool {
  return v !== null && v.isNumber && isFinite(v.num);
}

function integer(v: JsonValue, lo: f64, hi: f64): bool {
  return v.isNumber && v.num == Math.floor(v.num) && v.num >= lo && v.num <= hi;
}

/** Reads a spec from JSON bytes over the defaults; returns an error message or "". */
export function parseSpec(into: Spec, bytes: Uint8Array): string {
  let empty = true;
  for (let i = 0; i < bytes.length; i++) {
    let c = bytes[i];
    if (c != 0x20 && c != 0x0a && c != 0x0d && c != 0x09) { empty = false; break; }
  }
  if (!empty) {
    let parsed = parseJson(bytes);
    if (!parsed.ok) return "invalid JSON: " + parsed.error;
    let obj = parsed.unwrap();
    if (!obj.isObject) return "the spec must be a JSON object";
    for (let i = 0; i < obj.length; i++) {
      let k = obj.keyAt(i);
      if (k != "spot" && k != "strike" && k != "rate" && k != "volatility" && k != "maturity" && k != "steps" &&
          k != "paths" && k != "option" && k != "seed" && k != "antithetic") return "unknown field " + k;
    }
    let v = obj.get("spot");
    if (v !== null) { if (!finite(v) || !(v.num > 0)) return "spot must be a positive number"; into.spot = v.num; }
    v = obj.get("strike");
    if (v !== null) { if (!finite(v) || !(v.num >= 0)) return "strike must be a non-negative number"; into.strike = v.num; }
    v = obj.get("rate");
    if (v !== null) { if (!finite(v) || Math.abs(v.num) > 10) return "rate must be a number from -10 to 10"; into.rate = v.num; }
    v = obj.get("volatility");
    if (v !== null) { if (!finite(v) || !(v.num >= 0 && v.num <= 10)) return "volatility must be a number from 0 to 10"; into.volatility = v.num; }
    v = obj.get("maturity");
    if (v !== null) { if (!finite(v) || !(v.num > 0 && v.num <= 100)) return "maturity must be a number of years above 0, at most 100"; into.maturity = v.num; }
    v = obj.get("steps");
    if (v !== null) { if (!integer(v, 1, 100000)) return "steps must be an integer from 1 to 100000"; into.steps = <i32>v.num; }
    v = obj.get("paths");
    if (v !== null) { if (!integer(v, 1, MAX_PATHS)) return "paths must be an integer from 1 to 2^40"; into.paths = <u64>v.num; }
    v = obj.get("seed");
    if (v !== null) { if (!integer(v, 0, MAX_SEED)) return "seed must be an integer from 0 to 2^53-1"; into.seed = <u64>v.num; }
    v = obj.get("option");
    if (v !== null) {
      let k = v.isString ? kindByName(v.str) : -1;
      if (k < 0) return "option must be european-call, european-put, asian-call or asian-put";
      into.kind = <Kind>k;
    }
    v = obj.get("antithetic");
    if (v !== null) { if (!v.isBool) return "antithetic must be true or false"; into.antithetic = v.boolValue; }
  }
  into.derive();
  return "";
}
