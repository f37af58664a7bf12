/** A call's guest log lines, kept under the per-call caps, and stdio byte streams cut into lines. */
import type { GuestLogLine } from './call-types.js';

export type GuestLogLevel = GuestLogLine['level'];

/** Levels by the number the `log` import takes. */
export const LOG_LEVELS: readonly GuestLogLevel[] = ['debug', 'info', 'warn', 'error'];

export class LogCollector {
  readonly lines: GuestLogLine[] = [];
  dropped = 0;
  private bytes = 0;

  constructor(
    private readonly maxLines: number,
    private readonly maxBytes: number,
  ) {}

  add(level: GuestLogLevel, message: string, byteLength = Buffer.byteLength(message)): void {
    if (this.lines.length >= this.maxLines || this.bytes + byteLength > this.maxBytes) {
      this.dropped++;
      return;
    }
    this.bytes += byteLength;
    this.lines.push({ level, message });
  }
}

/** Cuts what a guest writes to stdout or stderr into log lines. */
export class LineSplitter {
  private pending = '';
  private readonly decoder = new TextDecoder();

  constructor(
    private readonly level: GuestLogLevel,
    private readonly logs: LogCollector,
    /** A line that never ends is logged once it reaches this many characters, so it stays bounded. */
    private readonly maxLineLength: number,
  ) {}

  write(bytes: Uint8Array): void {
    this.pending += this.decoder.decode(bytes, { stream: true });
    let newline: number;
    while ((newline = this.pending.indexOf('\n')) >= 0) {
      this.emit(this.pending.slice(0, newline));
      this.pending = this.pending.slice(newline + 1);
    }
    if (this.pending.length >= this.maxLineLength) {
      this.emit(this.pending);
      this.pending = '';
    }
  }

  /** Logs a last line that had no newline. */
  flush(): void {
    this.pending += this.decoder.decode();
    if (this.pending.length > 0) this.emit(this.pending);
    this.pending = '';
  }

  private emit(line: string): void {
    this.logs.add(this.level, line.endsWith('\r') ? line.slice(0, -1) : line);
  }
}
