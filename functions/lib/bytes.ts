// A growable byte buffer: the way guests build their output (JSON, text,
// binary) before handing it to the host in one `output_write`.

/** Appends bytes to an internal buffer that doubles as it fills. */
export class ByteWriter {
  private buf: ArrayBuffer;
  private len: i32 = 0;

  constructor(initialCapacity: i32 = 256) {
    this.buf = new ArrayBuffer(max(initialCapacity, 16));
  }

  /** Number of bytes written so far. */
  get length(): i32 {
    return this.len;
  }

  /** Address of the first byte; valid until the next write. */
  get dataStart(): usize {
    return changetype<usize>(this.buf);
  }

  /** Forgets the contents, keeping the capacity. */
  reset(): void {
    this.len = 0;
  }

  /** Makes room for `extra` more bytes. */
  reserve(extra: i32): void {
    let need = this.len + extra;
    let cap = this.buf.byteLength;
    if (need <= cap) return;
    while (cap < need) cap = cap << 1;
    let grown = new ArrayBuffer(cap);
    memory.copy(changetype<usize>(grown), changetype<usize>(this.buf), <usize>this.len);
    this.buf = grown;
  }

  byte(b: u8): void {
    this.reserve(1);
    store<u8>(changetype<usize>(this.buf) + <usize>this.len, b);
    this.len += 1;
  }

  /** Copies `len` bytes starting at address `ptr`. */
  raw(ptr: usize, len: i32): void {
    this.reserve(len);
    memory.copy(changetype<usize>(this.buf) + <usize>this.len, ptr, <usize>len);
    this.len += len;
  }

  bytes(b: Uint8Array): void {
    this.raw(b.dataStart, b.length);
  }

  /** Appends `s` as UTF-8; unpaired surrogates become U+FFFD. */
  string(s: string): void {
    let n = String.UTF8.byteLength(s);
    this.reserve(n);
    String.UTF8.encodeUnsafe(
      changetype<usize>(s), s.length,
      changetype<usize>(this.buf) + <usize>this.len,
      false, String.UTF8.ErrorMode.REPLACE,
    );
    this.len += n;
  }

  /** Appends the decimal form of a signed integer. */
  int(v: i64): void {
    this.string(v.toString());
  }

  /** A copy of the contents. */
  toBytes(): Uint8Array {
    let out = new Uint8Array(this.len);
    memory.copy(out.dataStart, changetype<usize>(this.buf), <usize>this.len);
    return out;
  }

  /** The contents decoded as UTF-8. */
  toString(): string {
    return String.UTF8.decodeUnsafe(changetype<usize>(this.buf), <usize>this.len);
  }
}
