// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
// SC'11; the Random123 reference): a counter-based generator. The output is a
// pure function of a 128-bit counter and a 64-bit key, so any path's numbers
// can be made without making the numbers of the paths before it.
//
// quant keys it with the seed and counts (path index lo, path index hi, draw
// block, 0): the numbers of path p depend only on (seed, p), never on which
// clone simulates it.

const M0: u64 = 0xD2511F53;
const M1: u64 = 0xCD9E8D57;
const W0: u32 = 0x9E3779B9;
const W1: u32 = 0xBB67AE85;

/** The four output words of the last `philox` call. */
export let out0: u32 = 0;
export let out1: u32 = 0;
export let out2: u32 = 0;
export let out3: u32 = 0;

/** Philox4x32-10 of counter (c0, c1, c2, c3) under key (k0, k1), into out0..out3. */
export function philox(c0: u32, c1: u32, c2: u32, c3: u32, k0: u32, k1: u32): void {
  for (let r = 0; r < 10; r++) {
    let p0 = M0 * <u64>c0;
    let p1 = M1 * <u64>c2;
    let n0 = <u32>(p1 >> 32) ^ c1 ^ k0;
    let n2 = <u32>(p0 >> 32) ^ c3 ^ k1;
    c1 = <u32>p1;
    c3 = <u32>p0;
    c0 = n0;
    c2 = n2;
    k0 += W0;
    k1 += W1;
  }
  out0 = c0;
  out1 = c1;
  out2 = c2;
  out3 = c3;
}

/** The Random123 known-answer test: counter 0, key 0. */
export function philoxSelfTest(): bool {
  philox(0, 0, 0, 0, 0, 0);
  return out0 == 0x6627e8d5 && out1 == 0xe169c58d && out2 == 0xbc57ac4c && out3 == 0x9b00dbd8;
}
