/**
 * Direct replies: the guest thread that ran a call from a call channel
 * writes the reply frame to the channel's socket itself, so the answer
 * leaves without waking the host's main thread first (one wake-up of the six
 * a call takes, and the main thread's own work and collections, off the
 * answer's way: docs/benchmarks.md, "The reply from the guest thread").
 *
 * Each open channel has a line: a duplicate of its socket's descriptor
 * (native dupFd: Node closes the socket's own when it closes, and the number
 * may then name another file at once) and a lock word in a table every
 * thread shares. A frame must never be cut by another, so whoever writes
 * holds the lock:
 *
 *   FREE     nobody writes; a guest thread may take it (compare-and-swap)
 *   tag      the guest thread with that tag (its mailbox id) is in its send,
 *            a system call that never blocks (native sendNow)
 *   tag|CUT  it was cut: the socket took only part of the frame; the rest
 *            comes to the main thread in the call's result, which writes it
 *            before anything else
 *   MAIN     the main thread has frames in Node's socket (its own: refusals,
 *            declines, replies a guest thread did not write; or a rest)
 *   CLOSED   the socket closed: the line is free for another channel
 *
 * A guest thread that cannot take the lock at once, or whose socket takes
 * nothing, leaves the reply to the main thread as before (the call's result
 * carries it). A thread that ends holding a line (terminated past its time
 * limit, or crashed) may have left half a frame: that channel is closed, and
 * the gateway sends its calls in flight again through the queue group. The
 * descriptor is closed only once the line is CLOSED, and a call carries the
 * line's generation, so a guest thread never writes to a socket other than
 * its call's.
 */
import type { Socket } from 'node:net';
import type { NativePager } from './native/pager.js';

/** Where a guest thread writes one call's reply: the line, its generation, the call's frame id. */
export interface DirectReply {
  line: number;
  generation: number;
  frame: number;
  /** The host's id, for the reply's `hostId`. */
  hostId: string;
  /** The largest reply frame the channel takes; a larger one is left to the main thread (which refuses it). */
  maxFrameBytes: number;
}

/** A reply the guest thread wrote itself: the bytes of its frame it left for the main thread (none when it wrote them all). */
export interface Replied {
  replied: Uint8Array;
}

/** Lines in the table: one per channel open at once (one per gateway replica, and replicas restarted since). */
const LINES = 64;
/** Int32 words per line: its lock, generation and descriptor. */
const WORDS = 3;
const LOCK = 0;
const GENERATION = 1;
const FD = 2;

const FREE = 0;
const MAIN = -1;
const CLOSED = -2;
/** Set on a guest thread's tag when the socket took part of its frame. */
const CUT = 1 << 30;

/** The table's SharedArrayBuffer, every line CLOSED. */
function newTable(): SharedArrayBuffer {
  const buffer = new SharedArrayBuffer(LINES * WORDS * 4);
  const words = new Int32Array(buffer);
  for (let i = 0; i < LINES; i++) words[i * WORDS + LOCK] = CLOSED;
  return buffer;
}

/**
 * A guest thread's end: writes a reply frame if its line is free. Returns
 * what it wrote: the whole frame (done), a part (the rest is the main
 * thread's, the line stays cut), or 0 (nothing: the main thread writes it).
 */
export class ReplyWriter {
  private readonly words: Int32Array;

  constructor(
    table: SharedArrayBuffer,
    private readonly native: Pick<NativePager, 'sendNow'>,
    /** This thread's tag: its mailbox id (positive, under CUT). */
    private readonly tag: number,
  ) {
    this.words = new Int32Array(table);
  }

  write(to: DirectReply, frame: Uint8Array): number {
    const { words, tag } = this;
    if (!(to.line >= 0 && to.line < LINES)) return 0;
    const at = to.line * WORDS;
    if (Atomics.compareExchange(words, at + LOCK, FREE, tag) !== FREE) return 0;
    // Under the lock the generation and descriptor are the line's own: the main thread changes them only while CLOSED.
    if (Atomics.load(words, at + GENERATION) !== to.generation) {
      Atomics.store(words, at + LOCK, FREE);
      return 0;
    }
    const sent = this.native.sendNow(Atomics.load(words, at + FD), frame);
    Atomics.store(words, at + LOCK, sent > 0 && sent < frame.length ? tag | CUT : FREE);
    return sent;
  }
}

/** The main thread's table of lines. */
export class ReplyLines {
  readonly table = newTable();
  private readonly words = new Int32Array(this.table);
  private readonly lines: (ReplyLine | undefined)[] = new Array(LINES);

  constructor(private readonly native: Pick<NativePager, 'dupFd' | 'closeFd'>) {}

  /** A line for an open socket, or undefined (no line free, or a socket without a descriptor): its replies then all go through the main thread. */
  open(socket: Socket): ReplyLine | undefined {
    // Node keeps a connected TCP socket's descriptor on its handle (not in its typings).
    const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
    if (typeof fd !== 'number' || fd < 0) return undefined;
    const line = this.lines.findIndex((l, i) => l === undefined && this.words[i * WORDS + LOCK] === CLOSED);
    if (line < 0) return undefined;
    const at = line * WORDS;
    const dup = this.native.dupFd(fd);
    Atomics.store(this.words, at + GENERATION, (this.words[at + GENERATION]! + 1) | 0);
    Atomics.store(this.words, at + FD, dup);
    const opened = new ReplyLine(this.words, line, this.words[at + GENERATION]!, dup, socket, () => {
      this.native.closeFd(dup);
      this.lines[line] = undefined;
    });
    this.lines[line] = opened;
    Atomics.store(this.words, at + LOCK, FREE);
    return opened;
  }

  /** A guest thread has exited: a line it held may carry half a frame, so its channel is closed. */
  threadGone(tag: number): void {
    for (const line of this.lines) line?.heldBy(tag);
  }
}

/** One channel's line, as the main thread writes it: its frames in order, never inside a guest thread's. */
export class ReplyLine {
  private readonly at: number;
  private queue: Uint8Array[] = [];
  /** The main thread holds the lock (MAIN). */
  private owned = false;
  private closing = false;
  /** Its descriptor is closed and its place in the table given up: nothing here touches the table any more. */
  private freedAlready = false;
  private retrying = false;

  constructor(
    private readonly words: Int32Array,
    readonly line: number,
    readonly generation: number,
    private readonly fd: number,
    private readonly socket: Socket,
    private readonly freed: () => void,
  ) {
    this.at = line * WORDS;
  }

  /** Where a guest thread writes the reply to the call in frame `frame`. */
  target(frame: number, hostId: string, maxFrameBytes: number): DirectReply {
    return { line: this.line, generation: this.generation, frame, hostId, maxFrameBytes };
  }

  /** Writes a frame of the main thread's once no guest thread is in the middle of one; frames written in one tick leave in one write. */
  write(frame: Uint8Array): void {
    if (this.closing || this.socket.destroyed) return;
    this.queue.push(frame);
    this.flush();
  }

  /** A guest thread's frame was cut: `rest` goes first, and the line is the main thread's until it is written. */
  resume(rest: Uint8Array): void {
    if (rest.length === 0 || this.closing) return;
    Atomics.store(this.words, this.at + LOCK, MAIN);
    this.owned = true;
    this.queue.unshift(rest);
    this.flush();
  }

  /** The socket closed: nothing more is written, and the descriptor is closed once no guest thread writes to it. */
  close(): void {
    this.closing = true;
    this.queue = [];
    if (this.freedAlready) return;
    const lock = Atomics.load(this.words, this.at + LOCK);
    // Free, the main thread's, or cut (its rest will not be written now); a guest thread in its send is waited for.
    if ((lock > 0 && (lock & CUT) === 0) || Atomics.compareExchange(this.words, this.at + LOCK, lock, CLOSED) !== lock) return this.later();
    this.free();
  }

  /** Closes the channel if the thread with `tag` held the line when it ended. */
  heldBy(tag: number): void {
    const lock = Atomics.load(this.words, this.at + LOCK);
    if (this.freedAlready || (lock !== tag && lock !== (tag | CUT))) return;
    this.closing = true;
    this.queue = [];
    Atomics.store(this.words, this.at + LOCK, CLOSED);
    this.free();
    this.socket.destroy();
  }

  private free(): void {
    this.freedAlready = true;
    this.freed();
  }

  private flush(): void {
    if (this.queue.length === 0 || this.closing) return;
    if (!this.owned) {
      const lock = Atomics.compareExchange(this.words, this.at + LOCK, FREE, MAIN);
      if (lock !== FREE) {
        // A guest thread in its send is done within a system call; a cut frame's rest comes with its result (resume).
        if ((lock & CUT) === 0) this.later();
        return;
      }
      this.owned = true;
    }
    const frames = this.queue;
    this.queue = [];
    if (this.socket.writableCorked === 0) {
      this.socket.cork();
      process.nextTick(() => this.socket.uncork());
    }
    for (let i = 0; i < frames.length - 1; i++) this.socket.write(frames[i]!);
    this.socket.write(frames[frames.length - 1]!, () => this.written());
  }

  /** Node has handed a write to the kernel: the lock is freed once nothing of the main thread's is left in the socket. */
  private written(): void {
    if (!this.owned || this.closing || this.queue.length > 0 || this.socket.writableLength > 0) return;
    this.owned = false;
    Atomics.store(this.words, this.at + LOCK, FREE);
  }

  /** Tries again on the event loop's next turn (a guest thread's send is over by then, or its thread's exit is known). */
  private later(): void {
    if (this.retrying) return;
    this.retrying = true;
    setImmediate(() => {
      this.retrying = false;
      if (this.closing) this.close();
      else this.flush();
    });
  }
}
