// This call's output: the HTTP response body, the clone's result, or the
// reduced result. Every write appends; past the host's output cap
// (4 MiB by default) the write traps with `output limit exceeded`.

import { output_write } from "./abi";
import { ByteWriter } from "./bytes";

/** Appends `len` bytes starting at address `ptr`. */
export function writeOutputAt(ptr: usize, len: i32): void {
  output_write(ptr, len);
}

/** Appends bytes. */
export function writeOutput(bytes: Uint8Array): void {
  output_write(bytes.dataStart, bytes.length);
}

/** Appends a string as UTF-8. */
export function writeOutputString(s: string): void {
  let buf = String.UTF8.encode(s, false, String.UTF8.ErrorMode.REPLACE);
  output_write(changetype<usize>(buf), buf.byteLength);
}

/** Appends everything a ByteWriter holds. */
export function writeOutputWriter(w: ByteWriter): void {
  output_write(w.dataStart, w.length);
}
