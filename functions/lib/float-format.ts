// Doubles to text exactly as JavaScript's Number.prototype.toString does:
// the shortest digits that read back to the same double (the closest such
// digits, the even one on a tie), in JavaScript's layout (`1e+21`, `1e-7`,
// `0.000001`, `123.5`). AssemblyScript's own dtoa is not always shortest and
// writes `1.0`, so JSON output uses this.
//
// Digits come from Burger & Dybvig's free-format algorithm with big integers;
// integers below 2^53 take a short path.

import { BigNat } from "./bignat";

const LOG10_2: f64 = 0.30102999566398119521;

/** JavaScript's String(x) for a double. */
export function formatDouble(x: f64): string {
  if (isNaN(x)) return "NaN";
  if (x == Infinity) return "Infinity";
  if (x == -Infinity) return "-Infinity";
  if (x == 0) return "0"; // also -0, as in JavaScript
  if (x < 0) return "-" + formatPositive(-x);
  return formatPositive(x);
}

function formatPositive(x: f64): string {
  if (x < 9007199254740992.0 && Math.floor(x) == x) return (<u64>x).toString();
  let digits = new Array<u8>();
  let n = shortestDigits(x, digits);
  return layout(digits, n);
}

/** Writes the shortest digits of x > 0 to `out` and returns n such that
 * x ≈ 0.d1d2…dk × 10^n. */
function shortestDigits(x: f64, out: Array<u8>): i32 {
  let bits = reinterpret<u64>(x);
  let biased = <i32>(bits >> 52);
  let f = bits & 0xFFFFFFFFFFFFF;
  let e: i32;
  if (biased == 0) {
    e = -1074;
  } else {
    f |= 0x10000000000000;
    e = biased - 1075;
  }
  let inclusive = (f & 1) == 0; // an even mantissa owns its rounding boundaries
  let r: BigNat, s: BigNat, mPlus: BigNat, mMinus: BigNat;
  let lowerGapHalf = f == 0x10000000000000 && biased > 1;
  if (e >= 0) {
    r = BigNat.fromU64(f);
    mPlus = BigNat.fromU64(1);
    mPlus.shl(e);
    mMinus = mPlus.clone();
    if (!lowerGapHalf) {
      r.shl(e + 1);
      s = BigNat.fromU64(2);
    } else {
      r.shl(e + 2);
      s = BigNat.fromU64(4);
      mPlus.shl(1);
    }
  } else {
    r = BigNat.fromU64(f);
    mPlus = BigNat.fromU64(1);
    mMinus = BigNat.fromU64(1);
    if (!lowerGapHalf) {
      r.shl(1);
      s = BigNat.fromU64(1);
      s.shl(1 - e);
    } else {
      r.shl(2);
      s = BigNat.fromU64(1);
      s.shl(2 - e);
      mPlus.shl(1);
    }
  }
  // Estimate k = ceil(log10 x); it may be one too small, fixed below.
  let bitLength = 64 - <i32>clz(f);
  let k = <i32>Math.ceil(<f64>(e + bitLength - 1) * LOG10_2 - 1e-10);
  if (k >= 0) {
    s.mulPow10(k);
  } else {
    r.mulPow10(-k);
    mPlus.mulPow10(-k);
    mMinus.mulPow10(-k);
  }
  let t = r.clone();
  t.add(mPlus);
  let c = t.compare(s);
  if (inclusive ? c >= 0 : c > 0) {
    k++;
  } else {
    r.mulSmall(10);
    mPlus.mulSmall(10);
    mMinus.mulSmall(10);
  }
  // Generate digits until the rest is within the rounding interval.
  while (true) {
    let d: u8 = 0;
    while (r.compare(s) >= 0) {
      r.sub(s);
      d++;
    }
    let cLow = r.compare(mMinus);
    let low = inclusive ? cLow <= 0 : cLow < 0;
    t.copyFrom(r);
    t.add(mPlus);
    let cHigh = t.compare(s);
    let high = inclusive ? cHigh >= 0 : cHigh > 0;
    if (!low && !high) {
      out.push(d);
      r.mulSmall(10);
      mPlus.mulSmall(10);
      mMinus.mulSmall(10);
      continue;
    }
    if (low && !high) {
      out.push(d);
    } else if (high && !low) {
      out.push(d + 1);
    } else {
      // Both digits read back correctly: take the closer, the even one on a tie.
      t.copyFrom(r);
      t.shl(1);
      let c2 = t.compare(s);
      out.push(c2 < 0 || (c2 == 0 && (d & 1) == 0) ? d : d + 1);
    }
    return k;
  }
}

/** Lays out digits d1…dk with decimal exponent n as Number::toString does. */
function layout(digits: Array<u8>, n: i32): string {
  let k = digits.length;
  let s = "";
  if (k <= n && n <= 21) {
    s = digitString(digits, 0, k);
    for (let i = k; i < n; i++) s += "0";
    return s;
  }
  if (0 < n && n <= 21) {
    return digitString(digits, 0, n) + "." + digitString(digits, n, k);
  }
  if (-6 < n && n <= 0) {
    s = "0.";
    for (let i = 0; i < -n; i++) s += "0";
    return s + digitString(digits, 0, k);
  }
  let e = n - 1;
  s = digitString(digits, 0, 1);
  if (k > 1) s += "." + digitString(digits, 1, k);
  return s + (e < 0 ? "e-" : "e+") + abs(e).toString();
}

function digitString(digits: Array<u8>, from: i32, to: i32): string {
  let codes = new Array<i32>(to - from);
  for (let i = from; i < to; i++) codes[i - from] = 0x30 + <i32>digits[i];
  return String.fromCharCodes(codes);
}
