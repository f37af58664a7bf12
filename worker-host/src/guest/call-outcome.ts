/** How a guest call ended, from what its imports recorded, what it threw and the status it returned. */
import type { WireError } from '@flurry/core';
import type { CallContext } from './call-context.js';
import { GuestExit, guestWireError } from './guest-failure.js';

/** Undefined for success, or the error to answer with. */
export function outcome(context: CallContext, thrown: { error: unknown } | undefined, status: number): WireError | undefined {
  const ending = context.failure ?? thrown?.error;
  if (ending instanceof GuestExit) return ending.exitCode === 0 ? undefined : { code: 'guest_error', message: `exit ${ending.exitCode}` };
  if (ending !== undefined || thrown) return guestWireError(ending);
  if (status !== 0) return { code: 'guest_error', message: `guest returned status ${status}` };
  return undefined;
}
