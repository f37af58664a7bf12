// Query strings (`a=1&b=x%20y`): split on `&`, names and values
// percent-decoded as UTF-8, `+` read as a space (HTML form encoding).

/** Returned by `parseIntStrict` and `Query.getInt` for text that is not an integer. */
export const INVALID_INT: i64 = i64.MIN_VALUE;

/** One `name=value` pair; a bare `name` has an empty value. */
export class QueryParam {
  constructor(public name: string, public value: string) {}
}

export class Query {
  constructor(public params: QueryParam[]) {}

  /** Parses a raw query string (without `?`). */
  static parse(raw: string): Query {
    let params = new Array<QueryParam>();
    if (raw.length == 0) return new Query(params);
    let parts = raw.split("&");
    for (let i = 0; i < parts.length; i++) {
      let part = parts[i];
      if (part.length == 0) continue;
      let eq = part.indexOf("=");
      let name = eq < 0 ? part : part.substring(0, eq);
      let value = eq < 0 ? "" : part.substring(eq + 1);
      params.push(new QueryParam(percentDecode(name), percentDecode(value)));
    }
    return new Query(params);
  }

  has(name: string): bool {
    for (let i = 0; i < this.params.length; i++) {
      if (this.params[i].name == name) return true;
    }
    return false;
  }

  /** First value of `name`, or null. */
  get(name: string): string | null {
    for (let i = 0; i < this.params.length; i++) {
      if (this.params[i].name == name) return this.params[i].value;
    }
    return null;
  }

  /** First value of `name`, or `fallback`. */
  getOr(name: string, fallback: string): string {
    let v = this.get(name);
    return v === null ? fallback : v;
  }

  /** Every value of `name`, in order. */
  getAll(name: string): string[] {
    let out = new Array<string>();
    for (let i = 0; i < this.params.length; i++) {
      if (this.params[i].name == name) out.push(this.params[i].value);
    }
    return out;
  }

  /** `name` as a decimal integer: `fallback` when absent, INVALID_INT when
   * present but not an integer. */
  getInt(name: string, fallback: i64): i64 {
    let v = this.get(name);
    return v === null ? fallback : parseIntStrict(v);
  }
}

/** Parses an optionally signed decimal integer with no other characters;
 * INVALID_INT when it is not one or does not fit in 18 digits. */
export function parseIntStrict(s: string): i64 {
  let n = s.length;
  let i = 0;
  let negative = false;
  if (n > 0 && (s.charCodeAt(0) == 0x2d || s.charCodeAt(0) == 0x2b)) {
    negative = s.charCodeAt(0) == 0x2d;
    i = 1;
  }
  if (i == n || n - i > 18) return INVALID_INT;
  let v: i64 = 0;
  for (; i < n; i++) {
    let c = s.charCodeAt(i) - 0x30;
    if (c < 0 || c > 9) return INVALID_INT;
    v = v * 10 + c;
  }
  return negative ? -v : v;
}

function hexValue(c: i32): i32 {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

/** Decodes `%XX` escapes (as UTF-8) and `+`; malformed escapes stay as they are. */
export function percentDecode(s: string): string {
  if (s.indexOf("%") < 0 && s.indexOf("+") < 0) return s;
  // Work on UTF-8 bytes so that multi-byte escapes (%C3%A9) decode correctly.
  let src = String.UTF8.encode(s);
  let n = src.byteLength;
  let out = new Uint8Array(n);
  let sp = changetype<usize>(src);
  let o = 0;
  for (let i = 0; i < n; i++) {
    let c = <i32>load<u8>(sp + <usize>i);
    if (c == 0x2b) {
      c = 0x20;
    } else if (c == 0x25 && i + 2 < n) {
      let h = hexValue(<i32>load<u8>(sp + <usize>i + 1));
      let l = hexValue(<i32>load<u8>(sp + <usize>i + 2));
      if (h >= 0 && l >= 0) {
        c = (h << 4) | l;
        i += 2;
      }
    }
    out[o++] = <u8>c;
  }
  return String.UTF8.decodeUnsafe(out.dataStart, <usize>o);
}
