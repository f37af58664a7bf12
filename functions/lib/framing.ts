// The input of `reduce(count)`: every clone's output in index order, each as
// a little-endian u32 length followed by that many bytes.

import { readInput } from "./input";

/** Splits framed bytes into their parts (views, not copies). Returns null
 * when the framing is broken (a length runs past the end). */
export function splitFrames(bytes: Uint8Array): Uint8Array[] | null {
  let out = new Array<Uint8Array>();
  let pos = 0;
  let n = bytes.length;
  while (pos < n) {
    if (n - pos < 4) return null;
    let len = <i32>load<u32>(bytes.dataStart + <usize>pos);
    pos += 4;
    if (len < 0 || len > n - pos) return null;
    out.push(bytes.subarray(pos, pos + len));
    pos += len;
  }
  return out;
}

/** Reads the input of `reduce` and splits it into the clone outputs. Aborts
 * when the framing is broken or the number of parts is not `count`. */
export function readReduceInput(count: i32): Uint8Array[] {
  let frames = splitFrames(readInput());
  if (frames === null) throw new Error("reduce input: broken framing");
  let parts = changetype<Uint8Array[]>(frames);
  if (parts.length != count) {
    throw new Error("reduce input: expected " + count.toString() + " outputs, got " + parts.length.toString());
  }
  return parts;
}

/** Frames parts the way the host frames clone outputs (for tests and for
 * guests that produce framed data themselves). */
export function joinFrames(parts: Uint8Array[]): Uint8Array {
  let total = 0;
  for (let i = 0; i < parts.length; i++) total += 4 + parts[i].length;
  let out = new Uint8Array(total);
  let pos = 0;
  for (let i = 0; i < parts.length; i++) {
    let p = parts[i];
    store<u32>(out.dataStart + <usize>pos, <u32>p.length);
    memory.copy(out.dataStart + <usize>pos + 4, p.dataStart, <usize>p.length);
    pos += 4 + p.length;
  }
  return out;
}
