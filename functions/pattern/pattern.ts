// The deterministic memory pattern. The region is a run of u64 words; word k
// (byte offset 8k from the region start; 4 KiB page i holds words 512i ..
// 512i + 511) holds
//
//   parent(k) = splitmix64(seed * 2^32 + k)              written by init
//   clone(k)  = parent(k) XOR splitmix64(index + 1)      written by clone `index`
//
// where splitmix64 is the SplitMix64 output function (below). A test can
// compute any word independently.

/** SplitMix64's output function of x (mod 2^64). */
// @ts-ignore: decorator
@inline
export function splitmix64(x: u64): u64 {
  let z = x + 0x9E3779B97F4A7C15;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
  return z ^ (z >> 31);
}

/** What the parent writes at word k. */
// @ts-ignore: decorator
@inline
export function parentWord(seed: u64, k: u64): u64 {
  return splitmix64((seed << 32) + k);
}

/** The XOR mask clone `index` applies to its slice. */
export function cloneMask(index: i32): u64 {
  return splitmix64(<u64>index + 1);
}

/** Writes parent(k) ^ mask for words [from, to) of the region at `base`. */
export function writeWords(base: usize, seed: u64, mask: u64, from: u64, to: u64): void {
  for (let k = from; k < to; k++) {
    store<u64>(base + (<usize>k << 3), parentWord(seed, k) ^ mask);
  }
}

/** Result of checking a range of words. */
export class Check {
  mismatches: i64 = 0;
  /** Byte offset in the region of the first wrong word, -1 when none. */
  firstMismatch: i64 = -1;
  /** Wrapping sum of the words read: equal for equal contents. */
  checksum: u64 = 0;
}

/** Checks that words [from, to) hold parent(k) ^ mask, adding to `into`. */
export function checkWords(base: usize, seed: u64, mask: u64, from: u64, to: u64, into: Check): void {
  let sum: u64 = 0;
  let bad: i64 = 0;
  for (let k = from; k < to; k++) {
    let w = load<u64>(base + (<usize>k << 3));
    sum += w;
    if (w != (parentWord(seed, k) ^ mask)) {
      if (into.firstMismatch < 0) into.firstMismatch = <i64>(k << 3);
      bad++;
    }
  }
  into.checksum += sum;
  into.mismatches += bad;
}
