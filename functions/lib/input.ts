// This call's input: the HTTP body for `handle`, the init input for `init`,
// the clone's input for `run`, the framed clone outputs for `reduce`.

import { input_read, input_size } from "./abi";
import { decodeUtf8 } from "./utf8";

/** Size of the input in bytes. */
export function inputSize(): i32 {
  return input_size();
}

/** The whole input as bytes. */
export function readInput(): Uint8Array {
  let size = input_size();
  let bytes = new Uint8Array(size);
  let done = 0;
  while (done < size) {
    let n = input_read(bytes.dataStart + <usize>done, size - done, done);
    if (n <= 0) break; // the host says there is no more
    done += n;
  }
  return done == size ? bytes : bytes.subarray(0, done);
}

/** The whole input decoded as UTF-8 (invalid sequences are not checked:
 * use `isValidUtf8(readInput())` when that matters). */
export function readInputString(): string {
  return decodeUtf8(readInput());
}
