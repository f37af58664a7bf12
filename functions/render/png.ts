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
  let rowBytes = width * 3;
  // The filtered image: a filter byte (0) before every row.
  let raw = new Uint8Array((rowBytes + 1) * height);
  for (let y = 0; y < height; y++) {
    memory.copy(raw.dataStart + <usize>(y * (rowBytes + 1) + 1), rgb.dataStart + <usize>(y * rowBytes), <usize>rowBytes);
  }
  // zlib: CMF 0x78 (deflate, 32 KiB window), FLG 0x01 (check bits, no dict, fastest).
  let z = new ByteWriter();
  z.byte(0x78); z.byte(0x01);
  let n = raw.length;
  let pos = 0;
  do {
    let len = min(65535, n - pos);
    let last = pos + len >= n;
    z.byte(last ? 1 : 0); // BFINAL, BTYPE 00 (stored)
    z.byte(<u8>len); z.byte(<u8>(len >> 8));
    z.byte(<u8>~len); z.byte(<u8>(~len >> 8));
    z.bytes(raw.subarray(pos, pos + len));
    pos += len;
  } while (pos < n);
  let a: u32 = 1, b: u32 = 0;
  for (let i = 0; i < n; i++) {
    a = (a + <u32>unchecked(raw[i])) % 65521;
    b = (b + a) % 65521;
  }
  u32be(z, (b << 16) | a);

  let out = new ByteWriter();
  let sig: u8[] = [137, 80, 78, 71, 13, 10, 26, 10];
  for (let i = 0; i < 8; i++) out.byte(sig[i]);
  let ihdr = new Uint8Array(13);
  store<u32>(ihdr.dataStart, bswap<u32>(<u32>width));
  store<u32>(ihdr.dataStart + 4, bswap<u32>(<u32>height));
  ihdr[8] = 8;  // bit depth
  ihdr[9] = 2;  // colour type: RGB
  ihdr[10] = 0; // deflate
  ihdr[11] = 0; // adaptive filtering (type 0 used)
  ihdr[12] = 0; // no interlace
  chunk(out, "IHDR", ihdr);
  let zbytes = new Uint8Array(z.length);
  memory.copy(zbytes.dataStart, z.dataStart, <usize>z.length);
  chunk(out, "IDAT", zbytes);
  chunk(out, "IEND", new Uint8Array(0));
  let png = new Uint8Array(out.length);
  memory.copy(png.dataStart, out.dataStart, <usize>out.length);
  return png;
}
