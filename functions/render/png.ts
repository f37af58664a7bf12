// A small PNG encoder: 8-bit RGB, no interlace, filter type 0 on every row,
// the zlib stream made of stored (uncompressed) deflate blocks. Chunks carry
// their CRC-32, the zlib stream its Adler-32.

import { ByteWriter } from "../lib";

const CRC_TABLE = makeCrcTable();

function makeCrcTable(): StaticArray<u32> {
  let t = new StaticArray<u32>(256);
  for (let n: u32 = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xedb88320 ^ (c >> 1) : c >> 1;
    t[n] = c;
  }
  return t;
}

export function crc32(ptr: usize, len: i32, crc: u32 = 0): u32 {
  let c = ~crc;
  for (let i = 0; i < len; i++) c = unchecked(CRC_TABLE[(c ^ load<u8>(ptr + <usize>i)) & 0xff]) ^ (c >> 8);
  return ~c;
}

function u32be(w: ByteWriter, v: u32): void {
  w.byte(<u8>(v >> 24)); w.byte(<u8>(v >> 16)); w.byte(<u8>(v >> 8)); w.byte(<u8>v);
}

function chunk(w: ByteWriter, type: string, data: Uint8Array): void {
  u32be(w, <u32>data.length);
  let start = w.length;
  for (let i = 0; i < 4; i++) w.byte(<u8>type.charCodeAt(i));
  w.bytes(data);
  u32be(w, crc32(w.dataStart + <usize>start, w.length - start));
}

/** PNG bytes of a width x height RGB8 image (rows top to bottom, 3 bytes a pixel). */
export function encodePng(width: i32, height: i32, rgb: Uint8Array): Uint8Array {
  let raw = filterRows(width, height, rgb);
  // zlib: CMF 0x78 (deflate, 32 KiB window), FLG 0x9c (default level, check bits).
  let z = new ByteWriter(raw.length / 2 + 64);
  z.byte(0x78); z.byte(0x9c);
  deflateFixed(raw, z);
  let n = raw.length;
  let a: u32 = 1, b: u32 = 0;
  for (let i = 0; i < n; i++) {
    a = (a + <u32>unchecked(raw[i])) % 65521;
    b = (b + a) % 65521;
  }
  u32be(z, (b << 16) | a);

  let out = new ByteWriter(z.length + 64);
  let sig: u8[] = [137, 80, 78, 71, 13, 10, 26, 10];
  for (let i = 0; i < 8; i++) out.byte(sig[i]);
  let ihdr = new Uint8Array(13);
  store<u32>(ihdr.dataStart, bswap<u32>(<u32>width));
  store<u32>(ihdr.dataStart + 4, bswap<u32>(<u32>height));
  ihdr[8] = 8;  // bit depth
  ihdr[9] = 2;  // colour type: RGB
  ihdr[10] = 0; // deflate
  ihdr[11] = 0; // adaptive filtering
  ihdr[12] = 0; // no interlace
  chunk(out, "IHDR", ihdr);
  chunk(out, "IDAT", z.toBytes());
  chunk(out, "IEND", new Uint8Array(0));
  return out.toBytes();
}

// ---- filtering: per row the filter (None, Sub, Up, Average, Paeth) with the
// smallest sum of absolute (signed) bytes, the usual heuristic ----

@inline function paeth(a: i32, b: i32, c: i32): i32 {
  let p = a + b - c;
  let pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

function filterRows(width: i32, height: i32, rgb: Uint8Array): Uint8Array {
  let rowBytes = width * 3;
  let raw = new Uint8Array((rowBytes + 1) * height);
  let trial = new Uint8Array(rowBytes);
  for (let y = 0; y < height; y++) {
    let cur = rgb.dataStart + <usize>(y * rowBytes);
    let prev = cur - <usize>rowBytes; // only read when y > 0
    let dst = raw.dataStart + <usize>(y * (rowBytes + 1));
    let best: i64 = i64.MAX_VALUE;
    for (let f = 0; f < 5; f++) {
      let sum: i64 = 0;
      for (let i = 0; i < rowBytes; i++) {
        let x = <i32>load<u8>(cur + <usize>i);
        let a = i >= 3 ? <i32>load<u8>(cur + <usize>(i - 3)) : 0;
        let b = y > 0 ? <i32>load<u8>(prev + <usize>i) : 0;
        let c = i >= 3 && y > 0 ? <i32>load<u8>(prev + <usize>(i - 3)) : 0;
        let v = f == 0 ? x : f == 1 ? x - a : f == 2 ? x - b : f == 3 ? x - ((a + b) >> 1) : x - paeth(a, b, c);
        let u = <u8>v;
        unchecked(trial[i] = u);
        sum += <i64>abs(<i32><i8>u);
      }
      if (sum < best) {
        best = sum;
        store<u8>(dst, <u8>f);
        memory.copy(dst + 1, trial.dataStart, <usize>rowBytes);
      }
    }
  }
  return raw;
}

// ---- deflate: one block with the fixed Huffman codes (RFC 1951 3.2.6) and
// LZ77 matches found through hash chains over a 32 KiB window ----

const WINDOW = 32768;
const HASH_BITS = 15;
const MAX_CHAIN = 48;
const LEN_BASE: StaticArray<i32> = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258];
const LEN_EXTRA: StaticArray<i32> = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
const DIST_BASE: StaticArray<i32> = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577];
const DIST_EXTRA: StaticArray<i32> = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13];

class Bits {
  acc: u64 = 0;
  n: i32 = 0;
  constructor(public out: ByteWriter) {}
  /** The low `count` bits of `v`, least significant first. */
  put(v: u32, count: i32): void {
    this.acc |= <u64>v << <u64>this.n;
    this.n += count;
    while (this.n >= 8) { this.out.byte(<u8>this.acc); this.acc >>= 8; this.n -= 8; }
  }
  /** A Huffman code of `len` bits, most significant bit first. */
  code(c: u32, len: i32): void {
    let r: u32 = 0;
    for (let i = 0; i < len; i++) { r = (r << 1) | (c & 1); c >>= 1; }
    this.put(r, len);
  }
  flush(): void { if (this.n > 0) this.put(0, 8 - this.n); }
}

function literal(bits: Bits, v: i32): void {
  if (v < 144) bits.code(<u32>(0x30 + v), 8);
  else if (v < 256) bits.code(<u32>(0x190 + v - 144), 9);
  else if (v < 280) bits.code(<u32>(v - 256), 7);
  else bits.code(<u32>(0xc0 + v - 280), 8);
}

function match(bits: Bits, len: i32, dist: i32): void {
  let i = 28;
  while (LEN_BASE[i] > len) i--;
  literal(bits, 257 + i);
  if (LEN_EXTRA[i] > 0) bits.put(<u32>(len - LEN_BASE[i]), LEN_EXTRA[i]);
  let d = 29;
  while (DIST_BASE[d] > dist) d--;
  bits.code(<u32>d, 5);
  if (DIST_EXTRA[d] > 0) bits.put(<u32>(dist - DIST_BASE[d]), DIST_EXTRA[d]);
}

function deflateFixed(data: Uint8Array, out: ByteWriter): void {
  let bits = new Bits(out);
  bits.put(1, 1); // BFINAL
  bits.put(1, 2); // BTYPE 01: fixed Huffman codes
  let n = data.length;
  let head = new StaticArray<i32>(1 << HASH_BITS);
  for (let i = 0; i < head.length; i++) head[i] = -1;
  let prev = new StaticArray<i32>(WINDOW);
  let p = data.dataStart;
  let i = 0;
  while (i < n) {
    let bestLen = 0, bestDist = 0;
    if (i + 3 <= n) {
      let h = hash3(p + <usize>i);
      let cand = unchecked(head[h]);
      let chain = MAX_CHAIN;
      let limit = min(258, n - i);
      while (cand >= 0 && i - cand <= WINDOW && chain-- > 0) {
        if (load<u8>(p + <usize>(cand + bestLen)) == load<u8>(p + <usize>(i + bestLen))) {
          let l = 0;
          while (l < limit && load<u8>(p + <usize>(cand + l)) == load<u8>(p + <usize>(i + l))) l++;
          if (l > bestLen) { bestLen = l; bestDist = i - cand; if (l == limit) break; }
        }
        cand = unchecked(prev[cand & (WINDOW - 1)]);
      }
    }
    let step = 1;
    if (bestLen >= 3) { match(bits, bestLen, bestDist); step = bestLen; }
    else literal(bits, <i32>load<u8>(p + <usize>i));
    // Insert every position passed into the hash chains.
    for (let k = 0; k < step; k++, i++) {
      if (i + 3 <= n) {
        let h = hash3(p + <usize>i);
        unchecked(prev[i & (WINDOW - 1)] = head[h]);
        unchecked(head[h] = i);
      }
    }
  }
  literal(bits, 256); // end of block
  bits.flush();
}

@inline function hash3(at: usize): i32 {
  let v = <u32>load<u8>(at) | (<u32>load<u8>(at + 1) << 8) | (<u32>load<u8>(at + 2) << 16);
  return <i32>((v * 2654435761) >> (32 - HASH_BITS));
}
