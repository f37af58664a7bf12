// big-output: writes a lot of output, to test the output cap (4 MiB by
// default). Query `bytes` (default 8 MiB) sets how many bytes handle() writes,
// so a test can also stay just under the cap. The bytes are
// "0123456789abcdef" repeated, written in 64 KiB chunks.
//
//   run(i, n) writes the clone input's decimal number of bytes, or 8 MiB.

import { INVALID_INT, parseIntStrict, readInputString, requestQuery, writeOutputAt } from "../lib";

const CHUNK: i32 = 65536;
const DEFAULT_BYTES: i64 = 8 * 1024 * 1024;

export function handle(): i32 {
  let bytes = requestQuery().getInt("bytes", DEFAULT_BYTES);
  if (bytes == INVALID_INT || bytes < 0) throw new Error("bytes must be a non-negative integer");
  writeBytes(bytes);
  return 0;
}

export function run(index: i32, count: i32): i32 {
  let text = readInputString().trim();
  let bytes = text.length == 0 ? DEFAULT_BYTES : parseIntStrict(text);
  if (bytes == INVALID_INT || bytes < 0) throw new Error("clone input must be a byte count");
  writeBytes(bytes);
  return 0;
}

function writeBytes(total: i64): void {
  let chunk = heap.alloc(<usize>CHUNK);
  for (let i = 0; i < CHUNK; i++) {
    let d = i & 15;
    store<u8>(chunk + <usize>i, <u8>(d < 10 ? 0x30 + d : 0x57 + d)); // 0-9, a-f
  }
  let left = total;
  while (left > 0) {
    let n = <i32>min(left, <i64>CHUNK);
    writeOutputAt(chunk, n);
    left -= n;
  }
  heap.free(chunk);
}
