/** Everything one guest call reads and writes through its imports: input, request, output, response, logs, entropy, progress. */
import { randomFillSync } from 'node:crypto';
import type { HttpRequestData } from './call-types.js';
import { GuestFailure } from './guest-failure.js';
import { LineSplitter, LogCollector } from './guest-logs.js';
import { OutputBuffer } from './output-buffer.js';

/** The request without its body (the body is the call's input). */
export type RequestHead = Omit<HttpRequestData, 'body'>;

export interface CallLimits {
  maxOutputBytes: number;
  maxLogLines: number;
  maxLogBytes: number;
}

export class CallContext {
  status = 200;
  readonly headers: [string, string][] = [];
  readonly output: OutputBuffer;
  readonly logs: LogCollector;
  /** The last progress the guest reported. */
  progress: { done: number; total: number } | undefined;
  /**
   * The first failure an import raised. Kept because a guest built with
   * exception handling could catch the exception on its way out.
   */
  failure: Error | undefined;
  /** How much of the input WASI `fd_read` on stdin has consumed. */
  stdinOffset = 0;
  private stdout: LineSplitter | undefined;
  private stderr: LineSplitter | undefined;

  constructor(
    readonly input: Uint8Array,
    readonly request: RequestHead | undefined,
    readonly limits: CallLimits,
    /** Called on every progress report; undefined where progress is ignored. */
    private readonly progressSink?: (done: number, total: number) => void,
    readonly fillEntropy: (target: Uint8Array) => void = randomFillSync,
  ) {
    this.output = new OutputBuffer(limits.maxOutputBytes);
    this.logs = new LogCollector(limits.maxLogLines, limits.maxLogBytes);
  }

  /** Records why the call ends and returns it, for `throw context.end(...)`. */
  end(reason: Error): Error {
    this.failure ??= reason;
    return reason;
  }

  trap(message: string): Error {
    return this.end(new GuestFailure('guest_trap', message));
  }

  reportProgress(done: number, total: number): void {
    if (!this.progressSink) return;
    this.progress = { done, total };
    this.progressSink(done, total);
  }

  /** The line splitter for WASI fd 1 (info) or 2 (warn). */
  stdio(fd: 1 | 2): LineSplitter {
    if (fd === 1) return (this.stdout ??= new LineSplitter('info', this.logs, this.limits.maxLogBytes));
    return (this.stderr ??= new LineSplitter('warn', this.logs, this.limits.maxLogBytes));
  }

  /** Logs stdio lines left without a newline; call once the guest has returned. */
  finish(): void {
    this.stdout?.flush();
    this.stderr?.flush();
  }

  // The request's fields as the guest reads them (GuestMemory.writeText encodes each straight into its memory).

  method(): string {
    return this.request?.method.toUpperCase() ?? '';
  }

  path(): string {
    return this.request?.path ?? '';
  }

  /** Without its leading `?`. */
  query(): string {
    const q = this.request?.query ?? '';
    return q.startsWith('?') ? q.slice(1) : q;
  }

  headerCount(): number {
    return this.request?.headers.length ?? 0;
  }

  /** Header `i`'s name, lower case, or undefined when out of range. */
  headerName(i: number): string | undefined {
    return this.request?.headers[i]?.[0].toLowerCase();
  }

  headerValue(i: number): string | undefined {
    return this.request?.headers[i]?.[1];
  }
}
