/**
 * The host side of the guest ABI (docs/guest-abi.md): the `flurry` imports,
 * and the `env` imports AssemblyScript's runtime uses (`abort`, `seed`, `trace`).
 */
import type { CurrentCall } from './current-call.js';
import { LOG_LEVELS } from './guest-logs.js';

type HostFunction = (...args: number[]) => number | void;

/** HTTP token characters (RFC 9110), and header values without line breaks or NUL. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const HEADER_VALUE = /^[^\r\n\0]*$/;

export function flurryImports(call: CurrentCall): Record<string, HostFunction> {
  const memory = call.memory;
  return {
    input_size: () => call.context.input.length,
    input_read: (ptr, len, offset) => {
      const input = call.context.input;
      const from = offset >>> 0;
      if (from >= input.length) return 0;
      const n = Math.min(len >>> 0, input.length - from);
      memory.range(ptr, n).set(input.subarray(from, from + n));
      return n;
    },
    output_write: (ptr, len) => {
      const context = call.context;
      try {
        context.output.append(memory.range(ptr, len));
      } catch (err) {
        throw context.end(err as Error);
      }
    },
    request_method: (ptr, cap) => memory.writeText(ptr, cap, call.context.method()),
    request_path: (ptr, cap) => memory.writeText(ptr, cap, call.context.path()),
    request_query: (ptr, cap) => memory.writeText(ptr, cap, call.context.query()),
    request_header_count: () => call.context.headerCount(),
    request_header_name: (i, ptr, cap) => {
      const name = call.context.headerName(i);
      return name === undefined ? -1 : memory.writeText(ptr, cap, name);
    },
    request_header_value: (i, ptr, cap) => {
      const value = call.context.headerValue(i);
      return value === undefined ? -1 : memory.writeText(ptr, cap, value);
    },
    response_status: (code) => {
      const context = call.context;
      if (!(code >= 100 && code <= 599)) throw context.trap(`response status ${code} is outside 100-599`);
      context.status = code;
    },
    response_header: (namePtr, nameLen, valuePtr, valueLen) => {
      const context = call.context;
      const name = memory.utf8(namePtr, nameLen);
      const value = memory.utf8(valuePtr, valueLen);
      if (!HEADER_NAME.test(name)) throw context.trap(`invalid response header name ${JSON.stringify(name)}`);
      if (!HEADER_VALUE.test(value)) throw context.trap(`invalid value for response header ${name}: line breaks and NUL are not allowed`);
      // Headers are part of the response, so they count against the output cap too.
      try {
        context.output.reserve(nameLen + valueLen);
      } catch (err) {
        throw context.end(err as Error);
      }
      context.headers.push([name, value]);
    },
    log: (level, ptr, len) => {
      const n = len >>> 0;
      call.context.logs.add(LOG_LEVELS[Math.min(Math.max(level, 0), 3)], memory.utf8(ptr, n), n);
    },
    now_ms: () => performance.timeOrigin + performance.now(),
    monotonic_ms: () => performance.now(),
    entropy: (ptr, len) => call.context.fillEntropy(memory.range(ptr, len)),
    progress: (done, total) => call.context.reportProgress(done, total),
  };
}

const utf16 = new TextDecoder('utf-16le');

/** Imports of AssemblyScript's runtime. */
export function assemblyScriptImports(call: CurrentCall): Record<string, HostFunction> {
  const memory = call.memory;
  /** An AssemblyScript string: UTF-16LE, its byte length in the u32 just before it. */
  const asString = (ptr: number): string => {
    if (ptr === 0) return 'null';
    if (!memory.attached) return '?';
    return utf16.decode(memory.range(ptr, memory.u32(ptr - 4)));
  };
  return {
    abort: (msg, file, line, column) => {
      // An explicit abort("...") in AssemblyScript passes no file (0) and line 0: leave out the location then.
      const where = file === 0 ? '' : ` at ${asString(file)}:${line >>> 0}:${column >>> 0}`;
      throw call.context.trap(`abort${msg === 0 ? '' : `: ${asString(msg)}`}${where}`);
    },
    seed: () => {
      const words = new Uint32Array(2);
      call.context.fillEntropy(new Uint8Array(words.buffer));
      // 53 random bits, never 0 (AssemblyScript treats a zero seed as "unseeded").
      return (words[0] & 0x1fffff) * 2 ** 32 + words[1] || 1;
    },
    trace: (msg, n, ...args) => {
      const shown = args.slice(0, Math.max(0, Math.min(n, 5)));
      call.context.logs.add('debug', `trace: ${asString(msg)}${shown.length ? ' ' + shown.join(', ') : ''}`);
    },
  };
}
