// UTF-8 checks and conversions. AssemblyScript's own decoder accepts anything
// (garbage in, garbage out), so callers that must know whether bytes are text
// check with `isValidUtf8` first.

/** True when the `len` bytes at `ptr` are well-formed UTF-8 (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF). */
export function isValidUtf8At(ptr: usize, len: i32): bool {
  let p = ptr;
  let end = ptr + <usize>len;
  while (p < end) {
    // Skip ASCII eight bytes at a time: the common case.
    if (p + 8 <= end && (load<u64>(p) & 0x8080808080808080) == 0) {
      p += 8;
      continue;
    }
    let b0 = <u32>load<u8>(p);
    if (b0 < 0x80) {
      p += 1;
      continue;
    }
    let need: i32;
    let lo: u32 = 0x80;
    let hi: u32 = 0xbf;
    if (b0 >= 0xc2 && b0 <= 0xdf) {
      need = 1;
    } else if (b0 >= 0xe0 && b0 <= 0xef) {
      need = 2;
      if (b0 == 0xe0) lo = 0xa0;        // overlong
      else if (b0 == 0xed) hi = 0x9f;   // surrogates
    } else if (b0 >= 0xf0 && b0 <= 0xf4) {
      need = 3;
      if (b0 == 0xf0) lo = 0x90;        // overlong
      else if (b0 == 0xf4) hi = 0x8f;   // above U+10FFFF
    } else {
      return false;
    }
    if (p + <usize>need >= end) return false;
    let b1 = <u32>load<u8>(p, 1);
    if (b1 < lo || b1 > hi) return false;
    for (let i = 2; i <= need; i++) {
      let b = <u32>load<u8>(p + <usize>i);
      if ((b & 0xc0) != 0x80) return false;
    }
    p += <usize>(need + 1);
  }
  return true;
}

/** True when `bytes` are well-formed UTF-8. */
export function isValidUtf8(bytes: Uint8Array): bool {
  return isValidUtf8At(bytes.dataStart, bytes.length);
}

/** Decodes UTF-8 bytes (check them first if they may be invalid). */
export function decodeUtf8(bytes: Uint8Array): string {
  return String.UTF8.decodeUnsafe(bytes.dataStart, <usize>bytes.length);
}

/** Encodes a string as UTF-8; unpaired surrogates become U+FFFD. */
export function encodeUtf8(s: string): Uint8Array {
  let buf = String.UTF8.encode(s, false, String.UTF8.ErrorMode.REPLACE);
  return Uint8Array.wrap(buf);
}
