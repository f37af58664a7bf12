/**
 * The small WASI preview1 shim of the guest ABI (docs/guest-abi.md): stdio to
 * the call's log and input, host entropy, clocks, empty args and environment,
 * no files. node:wasi is not used because it cannot route stdout to the call's
 * log nor randomness to the call's entropy. Every other function is ENOSYS.
 */
import type { CurrentCall } from './current-call.js';
import { GuestExit } from './guest-failure.js';

export const WASI_MODULE = 'wasi_snapshot_preview1';

const SUCCESS = 0;
const EBADF = 8;
const EINVAL = 28;
export const ENOSYS = 52;
const ESPIPE = 70;

const FILETYPE_CHARACTER_DEVICE = 2;
const RIGHT_FD_READ = 1n << 1n;
const RIGHT_FD_WRITE = 1n << 6n;

const CLOCK_REALTIME = 0;
/** Monotonic, and the two CPU-time clocks, which a guest cannot tell apart from it (clock() uses them). */
const MONOTONIC_CLOCKS = new Set([1, 2, 3]);

type WasiFunction = (...args: (number | bigint)[]) => number;

/** The stub for every WASI function the shim does not implement. */
export const enosys: WasiFunction = () => ENOSYS;

export function wasiImports(call: CurrentCall): Record<string, WasiFunction> {
  const memory = call.memory;
  const isStdio = (fd: number) => fd >= 0 && fd <= 2;
  const empty = (countPtr: number, sizePtr: number) => {
    memory.setU32(countPtr, 0);
    memory.setU32(sizePtr, 0);
    return SUCCESS;
  };
  /** Calls `each` with the guest bytes of every iovec (ptr u32, len u32 pairs) and returns the bytes covered. */
  const forEachIovec = (iovs: number, count: number, each: (bytes: Uint8Array) => number | void): number => {
    let total = 0;
    for (let i = 0; i < count >>> 0; i++) {
      const base = (iovs >>> 0) + i * 8;
      const bytes = memory.range(memory.u32(base), memory.u32(base + 4));
      const done = each(bytes) ?? bytes.length;
      total += done;
      if (done < bytes.length) break;
    }
    return total;
  };

  return {
    args_get: () => SUCCESS,
    args_sizes_get: (argc, bufSize) => empty(argc as number, bufSize as number),
    environ_get: () => SUCCESS,
    environ_sizes_get: (count, bufSize) => empty(count as number, bufSize as number),

    clock_res_get: (id, resultPtr) => {
      if (id !== CLOCK_REALTIME && !MONOTONIC_CLOCKS.has(id as number)) return EINVAL;
      memory.setU64(resultPtr as number, 1000n);
      return SUCCESS;
    },
    clock_time_get: (id, _precision, resultPtr) => {
      let ns: bigint;
      if (id === CLOCK_REALTIME) ns = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
      else if (MONOTONIC_CLOCKS.has(id as number)) ns = process.hrtime.bigint();
      else return EINVAL;
      memory.setU64(resultPtr as number, ns);
      return SUCCESS;
    },

    fd_write: (fd, iovs, count, writtenPtr) => {
      if (fd !== 1 && fd !== 2) return EBADF;
      const stream = call.context.stdio(fd);
      memory.setU32(writtenPtr as number, forEachIovec(iovs as number, count as number, (bytes) => stream.write(bytes)));
      return SUCCESS;
    },
    fd_read: (fd, iovs, count, readPtr) => {
      if (fd !== 0) return EBADF;
      const context = call.context;
      const input = context.input;
      const read = forEachIovec(iovs as number, count as number, (bytes) => {
        const n = Math.min(bytes.length, input.length - context.stdinOffset);
        bytes.set(input.subarray(context.stdinOffset, context.stdinOffset + n));
        context.stdinOffset += n;
        return n;
      });
      memory.setU32(readPtr as number, read);
      return SUCCESS;
    },
    fd_fdstat_get: (fd, statPtr) => {
      if (!isStdio(fd as number)) return EBADF;
      // struct fdstat { u8 filetype; u16 flags @2; u64 rights_base @8; u64 rights_inheriting @16 }
      const stat = memory.range(statPtr as number, 24);
      stat.fill(0);
      stat[0] = FILETYPE_CHARACTER_DEVICE;
      memory.setU64((statPtr as number) + 8, fd === 0 ? RIGHT_FD_READ : RIGHT_FD_WRITE);
      return SUCCESS;
    },
    fd_prestat_get: () => EBADF,
    fd_close: (fd) => (isStdio(fd as number) ? SUCCESS : EBADF),
    fd_seek: (fd) => (isStdio(fd as number) ? ESPIPE : EBADF),

    random_get: (ptr, len) => {
      call.context.fillEntropy(memory.range(ptr as number, len as number));
      return SUCCESS;
    },
    proc_exit: (code) => {
      throw call.context.end(new GuestExit((code as number) >>> 0));
    },
  };
}
