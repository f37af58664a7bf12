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
  let n = shortestDigits(x);
  return layout(n);
}

// Scratch, allocated once so that formatting makes little garbage.
const R = new BigNat();
const S = new BigNat();
const M_PLUS = new BigNat();
const M_MINUS = new BigNat();
const T = new BigNat();
/** The digits of the last shortestDigits call (at most 17) as ASCII. */
const DIGITS = new StaticArray<u16>(20);
let digitCount: i32 = 0;

/** Puts the shortest digits of x > 0 in DIGITS and returns n such that
 * x ≈ 0.d1d2…dk × 10^n. */
function shortestDigits(x: f64): i32 {
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
  // x = r / s; the rounding interval is (x - mMinus / s, x + mPlus / s).
  let r = R.setU64(f);
  let s = S;
  let mPlus = M_PLUS.setU64(1);
  let mMinus = M_MINUS.setU64(1);
  let lowerGapHalf = f == 0x10000000000000 && biased > 1;
  if (e >= 0) {
    mPlus.shl(e);
    mMinus.shl(e);
    if (!lowerGapHalf) {
      r.shl(e + 1);
      s.setU64(2);
    } else {
      r.shl(e + 2);
      s.setU64(4);
      mPlus.shl(1);
    }
  } else {
    s.setU64(1);
    if (!lowerGapHalf) {
      r.shl(1);
      s.shl(1 - e);
    } else {
      r.shl(2);
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
  let t = T.copyFrom(r);
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
  digitCount = 0;
  while (true) {
    let d: u16 = 0;
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
      unchecked(DIGITS[digitCount++] = 0x30 + d);
      r.mulSmall(10);
      mPlus.mulSmall(10);
      mMinus.mulSmall(10);
      continue;
    }
    if (high && (!low || closerAbove(r, s, t, d))) d++;
    unchecked(DIGITS[digitCount++] = 0x30 + d);
    return k;
  }
}

/** With both the digit d and d + 1 reading back correctly: whether d + 1 is
 * closer (2r > s), the even one on a tie. */
function closerAbove(r: BigNat, s: BigNat, t: BigNat, d: u16): bool {
  t.copyFrom(r);
  t.shl(1);
  let c = t.compare(s);
  return c > 0 || (c == 0 && (d & 1) != 0);
}

/** Lays out DIGITS[0..digitCount) with decimal exponent n as
 * Number::toString does. */
function layout(n: i32): string {
  let k = digitCount;
  if (k <= n && n <= 21) {
    return digitString(0, k) + "0".repeat(n - k);
  }
  if (0 < n && n <= 21) {
    return digitString(0, n) + "." + digitString(n, k);
  }
  if (-6 < n && n <= 0) {
    return "0." + "0".repeat(-n) + digitString(0, k);
  }
  let e = n - 1;
  let s = digitString(0, 1);
  if (k > 1) s += "." + digitString(1, k);
  return s + (e < 0 ? "e-" : "e+") + abs(e).toString();
}

function digitString(from: i32, to: i32): string {
  let len = to - from;
  let out = changetype<string>(__new(<usize>len << 1, idof<string>()));
  memory.copy(changetype<usize>(out), changetype<usize>(DIGITS) + (<usize>from << 1), <usize>len << 1);
  return out;
}
