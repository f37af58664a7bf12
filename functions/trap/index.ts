// trap: fails on purpose, to test how the host reports traps.
//
//   handle()   query `mode`:
//                abort (default)  AssemblyScript abort: "abort: deliberate trap at trap/index.ts:L:C"
//                unreachable      the `unreachable` instruction
//                oob              a load beyond the end of memory
//                divzero          an integer division by zero
//   run(i, n)  aborts with "deliberate trap in clone <i>" when i is odd (or
//              always, when the clone input is "all"); even clones succeed
//              with {"index": i}. So a job of n clones has n/2 failures.

import { readInputString, requestQuery, writeOutputString } from "../lib";

export function handle(): i32 {
  let mode = requestQuery().getOr("mode", "abort");
  if (mode == "unreachable") unreachable();
  if (mode == "oob") return <i32>load<u8>(<usize>(memory.size() << 16) + 16);
  if (mode == "divzero") {
    let zero = requestQuery().getInt("zero", 0);
    return <i32>(<i64>1 / zero);
  }
  throw new Error("deliberate trap");
  return 0;
}

export function run(index: i32, count: i32): i32 {
  if ((index & 1) == 1 || readInputString() == "all") {
    throw new Error("deliberate trap in clone " + index.toString());
  }
  writeOutputString('{"index":' + index.toString() + "}");
  return 0;
}
