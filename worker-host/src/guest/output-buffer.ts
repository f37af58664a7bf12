/** A call's output (the response body), capped at the output limit. */
import { concatBytes } from '@flurry/core/basics';
import { GuestFailure } from './guest-failure.js';

export class OutputBuffer {
  private chunks: Uint8Array[] = [];
  private size = 0;

  constructor(private readonly maxBytes: number) {}

  get byteLength(): number {
    return this.size;
  }

  /** Counts bytes against the cap; past it, the call fails with output_limit. */
  reserve(n: number): void {
    if (this.size + n > this.maxBytes) throw new GuestFailure('output_limit', `output limit exceeded: more than ${this.maxBytes} bytes`);
    this.size += n;
  }

  /** Appends a copy of `bytes` (they usually live in guest memory, which is about to go away). */
  append(bytes: Uint8Array): void {
    this.reserve(bytes.length);
    if (bytes.length > 0) this.chunks.push(bytes.slice());
  }

  /** The whole output in one buffer of its own, fit to be transferred to another thread. */
  take(): Uint8Array {
    const chunks = this.chunks;
    this.chunks = [];
    return concatBytes(chunks);
  }
}
