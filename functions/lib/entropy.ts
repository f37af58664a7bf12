// Host randomness, different in every instance: each clone and each HTTP
// call sees its own, even though they all start from the same snapshot.

import { entropy } from "./abi";

const WORD = memory.data(8);

/** Fills `len` bytes at address `ptr` with host randomness. */
export function fillRandomAt(ptr: usize, len: i32): void {
  entropy(ptr, len);
}

/** Fills `bytes` with host randomness. */
export function fillRandom(bytes: Uint8Array): void {
  entropy(bytes.dataStart, bytes.length);
}

/** `n` fresh random bytes. */
export function randomBytes(n: i32): Uint8Array {
  let out = new Uint8Array(n);
  entropy(out.dataStart, n);
  return out;
}

export function randomU32(): u32 {
  entropy(WORD, 4);
  return load<u32>(WORD);
}

export function randomU64(): u64 {
  entropy(WORD, 8);
  return load<u64>(WORD);
}

/** Uniform in [0, 1), with 53 random bits. */
export function randomF64(): f64 {
  return <f64>(randomU64() >> 11) * 1.1102230246251565e-16; // 2^-53
}

/** Reseeds Math.random from host entropy. Call it in `on_restore`: the
 * generator's state lives in linear memory, so without this every instance
 * made from one snapshot would draw the same "random" numbers. */
export function reseedMathRandom(): void {
  Math.seedRandom(<i64>randomU64());
}
