// Decimal text to the nearest double, exactly (round half to even), as
// JavaScript's Number() does. AssemblyScript's parseFloat is not exact (it
// loses exponents above 38 and misrounds some values), so JSON needs this.
//
// Clinger's fast path handles short numbers with small exponents; the rest
// takes a guess from floating point and corrects it by comparing against the
// exact value with big integers (Clinger's AlgorithmR).

import { BigNat } from "./bignat";

/** Digits beyond this many cannot change the result except through a sticky
 * bit (any double's halfway point needs at most 767 significant digits). */
const MAX_DIGITS: i32 = 780;

// Exact powers of ten as doubles (10^22 is the last exact one).
const POW10: StaticArray<f64> = [
  1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
  1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

const digitBuf = new StaticArray<u8>(MAX_DIGITS + 1);
// Big-integer scratch, allocated once so that parsing makes no garbage.
const BIG = new BigNat();
const POW5 = new BigNat();
const LHS = new BigNat();
const RHS = new BigNat();

/** Parses `len` ASCII bytes at `ptr` of the form
 * `[+-]?\d+(\.\d+)?([eE][+-]?\d+)?`; NaN when they are not of that form. */
export function parseDecimalAt(ptr: usize, len: i32): f64 {
  let i = 0;
  let negative = false;
  if (i < len && (load<u8>(ptr) == 0x2d || load<u8>(ptr) == 0x2b)) {
    negative = load<u8>(ptr) == 0x2d;
    i++;
  }
  let nd = 0;          // significant digits kept in digitBuf
  let e10: i32 = 0;    // value = digits * 10^e10
  let truncated = false;
  let intStart = i;
  while (i < len) {
    let c = <i32>load<u8>(ptr + <usize>i);
    if (c < 0x30 || c > 0x39) break;
    if (nd == 0 && c == 0x30) { i++; continue; }
    if (nd < MAX_DIGITS) unchecked(digitBuf[nd++] = <u8>(c - 0x30));
    else { e10++; if (c != 0x30) truncated = true; }
    i++;
  }
  if (i == intStart) return NaN;
  if (i < len && load<u8>(ptr + <usize>i) == 0x2e) {
    i++;
    let fracStart = i;
    while (i < len) {
      let c = <i32>load<u8>(ptr + <usize>i);
      if (c < 0x30 || c > 0x39) break;
      if (nd == 0 && c == 0x30) { e10--; i++; continue; }
      if (nd < MAX_DIGITS) { unchecked(digitBuf[nd++] = <u8>(c - 0x30)); e10--; }
      else if (c != 0x30) truncated = true;
      i++;
    }
    if (i == fracStart) return NaN;
  }
  if (i < len && (load<u8>(ptr + <usize>i) | 0x20) == 0x65) {
    i++;
    let expNegative = false;
    if (i < len && (load<u8>(ptr + <usize>i) == 0x2d || load<u8>(ptr + <usize>i) == 0x2b)) {
      expNegative = load<u8>(ptr + <usize>i) == 0x2d;
      i++;
    }
    let expStart = i;
    let exp: i32 = 0;
    while (i < len) {
      let c = <i32>load<u8>(ptr + <usize>i);
      if (c < 0x30 || c > 0x39) break;
      if (exp < 100000) exp = exp * 10 + (c - 0x30); // far beyond any double
      i++;
    }
    if (i == expStart) return NaN;
    e10 += expNegative ? -exp : exp;
  }
  if (i != len) return NaN;
  let v = digitsToDouble(nd, e10, truncated);
  return negative ? -v : v;
}

/** Parses a string the way `parseDecimalAt` parses bytes. */
export function parseDecimal(s: string): f64 {
  let buf = String.UTF8.encode(s);
  return parseDecimalAt(changetype<usize>(buf), buf.byteLength);
}

/** The double nearest to digitBuf[0..nd) * 10^e10. */
function digitsToDouble(nd: i32, e10: i32, truncated: bool): f64 {
  if (truncated) {
    // A sticky digit right after the kept ones: the true value lies strictly
    // above them (and below the next value at that precision).
    unchecked(digitBuf[nd++] = 1);
    e10--;
  } else {
    while (nd > 0 && unchecked(digitBuf[nd - 1]) == 0) { nd--; e10++; }
    if (nd == 0) return 0;
  }
  if (nd + e10 > 310) return Infinity; // at least 10^310
  if (nd + e10 < -324) return 0;       // below 10^-324, under half the smallest subnormal

  // Clinger's fast path: both operands exact, one correctly rounded operation.
  if (nd <= 15 && e10 >= -22 && e10 <= 22) {
    let m: u64 = 0;
    for (let i = 0; i < nd; i++) m = m * 10 + <u64>unchecked(digitBuf[i]);
    let f = <f64>m;
    return e10 >= 0 ? f * unchecked(POW10[e10]) : f / unchecked(POW10[-e10]);
  }

  // A guess within a few units in the last place, from the first 19 digits.
  let used = min(nd, 19);
  let head: u64 = 0;
  for (let i = 0; i < used; i++) head = head * 10 + <u64>unchecked(digitBuf[i]);
  let z = scaleByPow10(<f64>head, e10 + (nd - used));
  if (z == Infinity) z = f64.MAX_VALUE;

  // The exact value D * 10^e10, as D * 10^max(e10, 0) and 5^-e10, built once.
  let big = BIG.setU64(0);
  for (let i = 0; i < nd; i++) big.mulSmall(10, <u32>unchecked(digitBuf[i]));
  if (e10 > 0) big.mulPow10(e10);
  let pow5: BigNat | null = null;
  if (e10 < 0) {
    POW5.setU64(1);
    POW5.mulPow5(-e10);
    pow5 = POW5;
  }

  // AlgorithmR: step z by one ulp until the exact value lies between the
  // midpoints to its neighbours.
  for (let guard = 0; guard < 4096; guard++) {
    if (z == Infinity) return Infinity;
    let bits = reinterpret<u64>(z);
    let biased = <i32>(bits >> 52);
    let m = bits & 0xFFFFFFFFFFFFF;
    let k: i32;
    if (biased == 0) {
      k = -1074;
    } else {
      m |= 0x10000000000000;
      k = biased - 1075;
    }
    // Upper midpoint: (2m + 1) * 2^(k-1).
    let c = compareExact(big, pow5, e10, (m << 1) + 1, k - 1);
    if (c > 0 || (c == 0 && (m & 1) != 0)) {
      z = reinterpret<f64>(bits + 1);
      continue;
    }
    if (m == 0) return z; // z is zero and the value is at most half the smallest subnormal
    // Lower midpoint: half an ulp below, or a quarter ulp at a binade boundary.
    let lower = m == 0x10000000000000 && biased > 1
      ? compareExact(big, pow5, e10, (m << 2) - 1, k - 2)
      : compareExact(big, pow5, e10, (m << 1) - 1, k - 1);
    if (lower < 0 || (lower == 0 && (m & 1) != 0)) {
      z = reinterpret<f64>(bits - 1);
      continue;
    }
    return z;
  }
  throw new Error("parseDecimal did not converge");
  return z;
}

/** x * 10^p in floating point, in steps by exact powers (a few ulps off). */
function scaleByPow10(x: f64, p: i32): f64 {
  while (p > 22) { x *= 1e22; p -= 22; }
  while (p < -22) { x /= 1e22; p += 22; }
  return p >= 0 ? x * unchecked(POW10[p]) : x / unchecked(POW10[-p]);
}

/** Compares D*10^e10 (given as `big` = D*10^max(e10,0) and `pow5` = 5^-e10
 * when e10 < 0) with mant * 2^exp2. */
function compareExact(big: BigNat, pow5: BigNat | null, e10: i32, mant: u64, exp2: i32): i32 {
  let lhs = LHS.copyFrom(big);
  let rhs = RHS;
  let rhsShift = exp2;
  if (pow5 !== null) {
    rhs.copyFrom(pow5);
    rhs.mulU64(mant);
    rhsShift -= e10; // times 2^-e10: with 5^-e10 that is 10^-e10
  } else {
    rhs.setU64(mant);
  }
  if (rhsShift >= 0) rhs.shl(rhsShift);
  else lhs.shl(-rhsShift);
  return lhs.compare(rhs);
}
