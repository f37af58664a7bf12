// Lower-case hexadecimal text.

const DIGITS = "0123456789abcdef";

/** `bytes` as lower-case hex, two characters per byte. */
export function toHex(bytes: Uint8Array): string {
  let parts = new Array<string>(bytes.length);
  for (let i = 0; i < bytes.length; i++) {
    let b = <i32>bytes[i];
    parts[i] = DIGITS.charAt(b >> 4) + DIGITS.charAt(b & 15);
  }
  return parts.join("");
}

/** A u64 as 16 lower-case hex digits. */
export function u64ToHex(v: u64): string {
  let s = "";
  for (let shift = 60; shift >= 0; shift -= 4) {
    s += DIGITS.charAt(<i32>((v >> <u64>shift) & 15));
  }
  return s;
}
