// spin: never returns, to test call and init timeouts.
//
//   init()      spins when the init input is "spin"; otherwise returns
//   handle()    spins forever
//   run(i, n)   spins forever

import { readInputString } from "../lib";

// A global the loop writes, so the optimizer cannot prove it does nothing.
let spins: u64 = 0;

function spinForever(): void {
  while (true) spins++;
}

export function init(): void {
  if (readInputString() == "spin") spinForever();
}

export function handle(): i32 {
  spinForever();
  return 0;
}

export function run(index: i32, count: i32): i32 {
  spinForever();
  return 0;
}
