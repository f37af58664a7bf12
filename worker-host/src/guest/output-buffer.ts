/** A call's output (the response body), capped at the output limit. */
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
    if (chunks.length === 1) return chunks[0];
    const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let offset = 0;
    for (const c of chunks) {
      out.set(c, offset);
      offset += c.length;
    }
    return out;
  }
}
