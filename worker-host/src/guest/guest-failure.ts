/** How a guest call ends abnormally, and the wire error each ending maps to. */
import type { ErrorCode, WireError } from '@flurry/core';

/** Thrown by host imports (and the runtime) to end a call with a given wire code. */
export class GuestFailure extends Error {
  override readonly name = 'GuestFailure';
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Thrown by WASI `proc_exit`: code 0 ends the call successfully. */
export class GuestExit extends Error {
  override readonly name = 'GuestExit';
  constructor(readonly exitCode: number) {
    super(`exit ${exitCode}`);
  }
}

declare global {
  namespace WebAssembly {
    /** Thrown by a guest's `throw` that nothing caught (exception handling): V8 has it, TypeScript's lib does not. */
    class Exception {}
  }
}

/** A guest's own words in an error (an abort's message) are cut to this many characters: they travel in a reply of bounded size. */
export const GUEST_MESSAGE_CHARS = 4096;

function bounded(message: string): string {
  return message.length <= GUEST_MESSAGE_CHARS ? message : `${message.slice(0, GUEST_MESSAGE_CHARS)}… (${message.length - GUEST_MESSAGE_CHARS} more characters)`;
}

/** The wire error for whatever escaped a guest's code (never a GuestExit); its message at most GUEST_MESSAGE_CHARS. */
export function guestWireError(err: unknown): WireError {
  const e = describeGuestError(err);
  return { code: e.code, message: bounded(e.message) };
}

function describeGuestError(err: unknown): WireError {
  if (err instanceof GuestFailure) return { code: err.code, message: err.message };
  if (err instanceof WebAssembly.RuntimeError) return { code: 'guest_trap', message: err.message };
  // Deep recursion in the guest surfaces as V8's stack overflow, which is the guest's trap.
  if (err instanceof RangeError && err.message.includes('call stack')) return { code: 'guest_trap', message: 'call stack exhausted' };
  if (err instanceof WebAssembly.Exception) return { code: 'guest_trap', message: 'uncaught wasm exception' };
  return { code: 'internal', message: err instanceof Error ? err.message : String(err) };
}
