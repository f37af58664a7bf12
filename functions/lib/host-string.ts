// Reading strings from the host's getters, which copy at most `cap` bytes and
// return the full length. A small static scratch area serves the common short
// case in one call; longer values get a second call into a right-sized buffer.

const SCRATCH_SIZE: i32 = 512;
const SCRATCH = memory.data(SCRATCH_SIZE);

/** A getter of the form `(ptr, cap) -> length`. */
export type Getter = (ptr: usize, cap: i32) => i32;

/** A getter of the form `(index, ptr, cap) -> length`, -1 when out of range. */
export type IndexedGetter = (index: i32, ptr: usize, cap: i32) => i32;

/** Calls `get` and decodes its UTF-8 result. */
export function hostString(get: Getter): string {
  let n = get(SCRATCH, SCRATCH_SIZE);
  if (n <= SCRATCH_SIZE) return String.UTF8.decodeUnsafe(SCRATCH, <usize>max(n, 0));
  let buf = new ArrayBuffer(n);
  n = min(get(changetype<usize>(buf), n), n);
  return String.UTF8.decodeUnsafe(changetype<usize>(buf), <usize>n);
}

/** Calls `get` for item `index`; null when the host says it is out of range. */
export function hostIndexedString(get: IndexedGetter, index: i32): string | null {
  let n = get(index, SCRATCH, SCRATCH_SIZE);
  if (n < 0) return null;
  if (n <= SCRATCH_SIZE) return String.UTF8.decodeUnsafe(SCRATCH, <usize>n);
  let buf = new ArrayBuffer(n);
  n = min(get(index, changetype<usize>(buf), n), n);
  return String.UTF8.decodeUnsafe(changetype<usize>(buf), <usize>max(n, 0));
}
