// counter: proves that no state leaks between calls. init() sets a counter
// from its init input (a decimal integer; 0 when empty) and every call
// increments it and answers the value. Each call runs in a fresh instance made
// from the snapshot taken after init, so the answer is always start + 1.
//
//   handle()            {"count": start + 1, "calls": 1}
//   run(index, count)   {"index": index, "count": start + 1, "calls": 1}
//
// `calls` is the length of an array grown on the heap per call: it proves
// the same for linear memory as `count` does for a global.

import { INVALID_INT, JsonWriter, parseIntStrict, readInputString, setContentType, writeOutputWriter } from "../lib";

let counter: i64 = 0;
const calls = new Array<i32>();

export function init(): void {
  let text = readInputString().trim();
  if (text.length == 0) return;
  let start = parseIntStrict(text);
  if (start == INVALID_INT) throw new Error("counter: init input must be a decimal integer, got " + text);
  counter = start;
}

/** Counts this call in the global and on the heap. */
function bump(): void {
  counter++;
  calls.push(<i32>counter);
}

export function handle(): i32 {
  bump();
  let w = new JsonWriter();
  w.beginObject().key("count").int(counter).key("calls").int(calls.length).endObject();
  setContentType("application/json");
  writeOutputWriter(w.out);
  return 0;
}

export function run(index: i32, count: i32): i32 {
  bump();
  let w = new JsonWriter();
  w.beginObject().key("index").int(index).key("count").int(counter).key("calls").int(calls.length).endObject();
  writeOutputWriter(w.out);
  return 0;
}
