// The HTTP response of a `handle` call: status and headers. The body is the
// call's output (see output.ts).

import { response_header, response_status } from "./abi";

/** Sets the HTTP status (default 200); outside 100–599 the host traps. */
export function setStatus(code: i32): void {
  response_status(code);
}

/** Adds a response header. */
export function addHeader(name: string, value: string): void {
  let n = String.UTF8.encode(name);
  let v = String.UTF8.encode(value);
  response_header(changetype<usize>(n), n.byteLength, changetype<usize>(v), v.byteLength);
}

/** Sets `content-type`. */
export function setContentType(type: string): void {
  addHeader("content-type", type);
}
