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

const encoder = new TextEncoder();
const EMPTY = new Uint8Array(0);

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
  private encodedHead: { method: Uint8Array; path: Uint8Array; query: Uint8Array; names: (Uint8Array | undefined)[]; values: (Uint8Array | undefined)[] } | undefined;

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

  method(): Uint8Array {
    return this.head()?.method ?? EMPTY;
  }

  path(): Uint8Array {
    return this.head()?.path ?? EMPTY;
  }

  query(): Uint8Array {
    return this.head()?.query ?? EMPTY;
  }

  headerCount(): number {
    return this.request?.headers.length ?? 0;
  }

  /** Header `i`'s name, lower case, or undefined when out of range. */
  headerName(i: number): Uint8Array | undefined {
    const head = this.head();
    if (!head || i < 0 || i >= head.names.length) return undefined;
    return (head.names[i] ??= encoder.encode(this.request!.headers[i][0].toLowerCase()));
  }

  headerValue(i: number): Uint8Array | undefined {
    const head = this.head();
    if (!head || i < 0 || i >= head.values.length) return undefined;
    return (head.values[i] ??= encoder.encode(this.request!.headers[i][1]));
  }

  /** The request's fields as UTF-8, encoded on first use (most calls read few of them). */
  private head() {
    const r = this.request;
    if (!r) return undefined;
    return (this.encodedHead ??= {
      method: encoder.encode(r.method.toUpperCase()),
      path: encoder.encode(r.path),
      query: encoder.encode(r.query.startsWith('?') ? r.query.slice(1) : r.query),
      names: new Array(r.headers.length),
      values: new Array(r.headers.length),
    });
  }
}
