/** One error type for the fleet: a code from the wire protocol, a message and an optional cause. */
import type { ErrorCode, WireError } from './protocol.js';

export class FlurryError extends Error {
  override readonly name = 'FlurryError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown; retryAfterSeconds?: number },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.retryAfterSeconds = options?.retryAfterSeconds;
  }
  readonly retryAfterSeconds?: number;

  toWire(): WireError {
    return { code: this.code, message: this.message, ...(this.retryAfterSeconds !== undefined ? { retryAfterSeconds: this.retryAfterSeconds } : {}) };
  }

  static fromWire(e: WireError): FlurryError {
    return new FlurryError(e.code, e.message, typeof e.retryAfterSeconds === 'number' ? { retryAfterSeconds: e.retryAfterSeconds } : undefined);
  }
}

/** Turns anything thrown into a wire error, keeping FlurryError codes. */
export function toWireError(err: unknown): WireError {
  if (err instanceof FlurryError) return err.toWire();
  return { code: 'internal', message: err instanceof Error ? err.message : String(err) };
}
