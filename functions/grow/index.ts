// grow: grows its memory one step at a time until memory.grow fails (at the
// declared maximum, 512 pages = 32 MiB, see asconfig.json), then aborts with
// "memory.grow failed at <pages> pages". With `touch=1` it also writes one
// byte in every 4 KiB of each new page, so the memory is really used.

import { requestQuery } from "../lib";

export function handle(): i32 {
  let touch = requestQuery().getOr("touch", "0") == "1";
  growUntilFailure(touch);
  return 0;
}

export function run(index: i32, count: i32): i32 {
  growUntilFailure(false);
  return 0;
}

function growUntilFailure(touch: bool): void {
  while (true) {
    let before = memory.grow(1);
    if (before < 0) break;
    if (touch) {
      let base = <usize>before << 16;
      for (let off: usize = 0; off < 65536; off += 4096) store<u8>(base + off, 1);
    }
  }
  // The allocator still has room in its own pages for this small message.
  throw new Error("memory.grow failed at " + memory.size().toString() + " pages");
}
