// Standard base64 (RFC 4648, with `=` padding).

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** Encodes `len` bytes at `ptr` as base64 ASCII bytes. */
export function base64EncodeAt(ptr: usize, len: i32): Uint8Array {
  let out = new Uint8Array(((len + 2) / 3) * 4);
  let table = changetype<usize>(ALPHABET);
  let o = out.dataStart;
  let i = 0;
  for (; i + 3 <= len; i += 3) {
    let v = (<u32>load<u8>(ptr + <usize>i) << 16)
      | (<u32>load<u8>(ptr + <usize>i + 1) << 8)
      | <u32>load<u8>(ptr + <usize>i + 2);
    store<u8>(o, load<u16>(table + ((v >> 18) << 1)));
    store<u8>(o, load<u16>(table + (((v >> 12) & 63) << 1)), 1);
    store<u8>(o, load<u16>(table + (((v >> 6) & 63) << 1)), 2);
    store<u8>(o, load<u16>(table + ((v & 63) << 1)), 3);
    o += 4;
  }
  let rest = len - i;
  if (rest > 0) {
    let v = <u32>load<u8>(ptr + <usize>i) << 16;
    if (rest == 2) v |= <u32>load<u8>(ptr + <usize>i + 1) << 8;
    store<u8>(o, load<u16>(table + ((v >> 18) << 1)));
    store<u8>(o, load<u16>(table + (((v >> 12) & 63) << 1)), 1);
    store<u8>(o, rest == 2 ? <u8>load<u16>(table + (((v >> 6) & 63) << 1)) : 0x3d, 2);
    store<u8>(o, 0x3d, 3);
  }
  return out;
}

/** Encodes bytes as a base64 string. */
export function base64Encode(bytes: Uint8Array): string {
  let ascii = base64EncodeAt(bytes.dataStart, bytes.length);
  return String.UTF8.decodeUnsafe(ascii.dataStart, <usize>ascii.length);
}
