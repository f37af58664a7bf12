// A strict JSON parser (RFC 8259) over UTF-8 bytes. Errors are reported, not
// thrown (AssemblyScript has no exceptions): a result carries either a value
// or a message with the byte offset where parsing stopped.

import { isValidUtf8At } from "../utf8";
import { parseDecimalAt } from "../float-parse";
import { JsonKind, JsonValue } from "./value";

/** Nesting deeper than this is refused rather than risking the stack. */
export const MAX_DEPTH: i32 = 512;

export class JsonResult {
  constructor(
    public value: JsonValue | null,
    public error: string,
    /** Byte offset of the error, -1 when there is none. */
    public offset: i32,
  ) {}

  get ok(): bool {
    return this.value !== null;
  }

  /** The value; aborts when parsing failed. */
  unwrap(): JsonValue {
    let v = this.value;
    if (v === null) throw new Error("invalid JSON: " + this.error);
    return changetype<JsonValue>(v);
  }
}

/** Parses a whole JSON text (surrounding whitespace allowed). */
export function parseJson(bytes: Uint8Array): JsonResult {
  return parseJsonAt(bytes.dataStart, bytes.length);
}

/** Parses a JSON text given as a string. */
export function parseJsonString(text: string): JsonResult {
  let buf = String.UTF8.encode(text);
  return parseJsonAt(changetype<usize>(buf), buf.byteLength);
}

/** Parses the `len` bytes at `ptr`. */
export function parseJsonAt(ptr: usize, len: i32): JsonResult {
  if (!isValidUtf8At(ptr, len)) return new JsonResult(null, "invalid UTF-8", 0);
  let p = new Parser(ptr, len);
  p.skipSpace();
  let v = p.value(0);
  if (v !== null) {
    p.skipSpace();
    if (p.pos < len) {
      p.fail("unexpected data after the value");
      v = null;
    }
  }
  return v === null ? new JsonResult(null, p.error, p.errorPos) : new JsonResult(v, "", -1);
}

class Parser {
  pos: i32 = 0;
  error: string = "";
  errorPos: i32 = -1;

  constructor(private ptr: usize, private len: i32) {}

  fail(message: string): void {
    if (this.errorPos < 0) {
      this.error = this.pos >= this.len ? "unexpected end of input" : message;
      this.errorPos = this.pos;
    }
  }

  private peek(): i32 {
    return this.pos < this.len ? <i32>load<u8>(this.ptr + <usize>this.pos) : -1;
  }

  skipSpace(): void {
    while (this.pos < this.len) {
      let c = load<u8>(this.ptr + <usize>this.pos);
      if (c != 0x20 && c != 0x0a && c != 0x0d && c != 0x09) break;
      this.pos++;
    }
  }

  value(depth: i32): JsonValue | null {
    let c = this.peek();
    if (c == 0x7b) return this.object(depth);
    if (c == 0x5b) return this.array(depth);
    if (c == 0x22) {
      let s = this.string();
      return s === null ? null : JsonValue.ofString(s);
    }
    if (c == 0x2d || (c >= 0x30 && c <= 0x39)) return this.number();
    if (c == 0x74) return this.literal("true", JsonValue.ofBool(true));
    if (c == 0x66) return this.literal("false", JsonValue.ofBool(false));
    if (c == 0x6e) return this.literal("null", JsonValue.ofNull());
    this.fail(c < 0 ? "unexpected end of input" : "unexpected character");
    return null;
  }

  private literal(word: string, v: JsonValue): JsonValue | null {
    let n = word.length;
    if (this.pos + n > this.len) {
      this.fail("invalid literal");
      return null;
    }
    for (let i = 0; i < n; i++) {
      if (<i32>load<u8>(this.ptr + <usize>(this.pos + i)) != word.charCodeAt(i)) {
        this.fail("invalid literal");
        return null;
      }
    }
    this.pos += n;
    return v;
  }

  private object(depth: i32): JsonValue | null {
    if (depth >= MAX_DEPTH) {
      this.fail("nesting too deep");
      return null;
    }
    this.pos++; // {
    let obj = JsonValue.newObject();
    this.skipSpace();
    if (this.peek() == 0x7d) {
      this.pos++;
      return obj;
    }
    while (true) {
      if (this.peek() != 0x22) {
        this.fail("expected a string key");
        return null;
      }
      let key = this.string();
      if (key === null) return null;
      this.skipSpace();
      if (this.peek() != 0x3a) {
        this.fail("expected ':'");
        return null;
      }
      this.pos++;
      this.skipSpace();
      let v = this.value(depth + 1);
      if (v === null) return null;
      obj.set(key, v);
      this.skipSpace();
      let c = this.peek();
      if (c == 0x2c) {
        this.pos++;
        this.skipSpace();
        continue;
      }
      if (c == 0x7d) {
        this.pos++;
        return obj;
      }
      this.fail(c < 0 ? "unexpected end of input" : "expected ',' or '}'");
      return null;
    }
  }

  private array(depth: i32): JsonValue | null {
    if (depth >= MAX_DEPTH) {
      this.fail("nesting too deep");
      return null;
    }
    this.pos++; // [
    let arr = JsonValue.newArray();
    this.skipSpace();
    if (this.peek() == 0x5d) {
      this.pos++;
      return arr;
    }
    while (true) {
      let v = this.value(depth + 1);
      if (v === null) return null;
      arr.push(v);
      this.skipSpace();
      let c = this.peek();
      if (c == 0x2c) {
        this.pos++;
        this.skipSpace();
        continue;
      }
      if (c == 0x5d) {
        this.pos++;
        return arr;
      }
      this.fail(c < 0 ? "unexpected end of input" : "expected ',' or ']'");
      return null;
    }
  }

  /** A string starting at the opening quote. */
  string(): string | null {
    this.pos++; // "
    let start = this.pos;
    // Fast path: no escapes, decode the bytes in one go.
    while (this.pos < this.len) {
      let c = load<u8>(this.ptr + <usize>this.pos);
      if (c == 0x22) {
        let s = String.UTF8.decodeUnsafe(this.ptr + <usize>start, <usize>(this.pos - start));
        this.pos++;
        return s;
      }
      if (c == 0x5c) break;
      if (c < 0x20) {
        this.fail("control character in string");
        return null;
      }
      this.pos++;
    }
    if (this.pos >= this.len) {
      this.fail("unterminated string");
      return null;
    }
    // Slow path: pieces between escapes plus the escaped characters.
    let parts = new Array<string>();
    let runStart = start;
    while (true) {
      if (this.pos >= this.len) {
        this.fail("unterminated string");
        return null;
      }
      let c = load<u8>(this.ptr + <usize>this.pos);
      if (c == 0x22) {
        parts.push(String.UTF8.decodeUnsafe(this.ptr + <usize>runStart, <usize>(this.pos - runStart)));
        this.pos++;
        return parts.join("");
      }
      if (c < 0x20) {
        this.fail("control character in string");
        return null;
      }
      if (c != 0x5c) {
        this.pos++;
        continue;
      }
      parts.push(String.UTF8.decodeUnsafe(this.ptr + <usize>runStart, <usize>(this.pos - runStart)));
      this.pos++; // backslash
      let e = this.peek();
      let code: i32 = -1;
      if (e == 0x22) code = 0x22;
      else if (e == 0x5c) code = 0x5c;
      else if (e == 0x2f) code = 0x2f;
      else if (e == 0x62) code = 0x08;
      else if (e == 0x66) code = 0x0c;
      else if (e == 0x6e) code = 0x0a;
      else if (e == 0x72) code = 0x0d;
      else if (e == 0x74) code = 0x09;
      else if (e == 0x75) {
        code = this.hex4(this.pos + 1);
        if (code < 0) {
          this.fail("invalid \\u escape");
          return null;
        }
        this.pos += 4;
      } else {
        this.fail("invalid escape");
        return null;
      }
      // \uD83D\uDE00 arrives as two escapes; each code unit is kept as is,
      // so pairs join up and lone surrogates survive, as in JavaScript.
      parts.push(String.fromCharCode(code));
      this.pos++;
      runStart = this.pos;
    }
  }

  private hex4(at: i32): i32 {
    if (at + 4 > this.len) return -1;
    let v = 0;
    for (let i = 0; i < 4; i++) {
      let c = <i32>load<u8>(this.ptr + <usize>(at + i));
      let d: i32;
      if (c >= 0x30 && c <= 0x39) d = c - 0x30;
      else if (c >= 0x61 && c <= 0x66) d = c - 0x61 + 10;
      else if (c >= 0x41 && c <= 0x46) d = c - 0x41 + 10;
      else return -1;
      v = (v << 4) | d;
    }
    return v;
  }

  /** A number: checks the JSON grammar, then converts exactly. */
  private number(): JsonValue | null {
    let start = this.pos;
    if (this.peek() == 0x2d) this.pos++;
    let c = this.peek();
    if (c == 0x30) {
      this.pos++;
    } else if (c >= 0x31 && c <= 0x39) {
      while (isDigit(this.peek())) this.pos++;
    } else {
      this.fail("invalid number");
      return null;
    }
    if (this.peek() == 0x2e) {
      this.pos++;
      if (!isDigit(this.peek())) {
        this.fail("invalid number");
        return null;
      }
      while (isDigit(this.peek())) this.pos++;
    }
    c = this.peek();
    if (c == 0x65 || c == 0x45) {
      this.pos++;
      c = this.peek();
      if (c == 0x2b || c == 0x2d) this.pos++;
      if (!isDigit(this.peek())) {
        this.fail("invalid number");
        return null;
      }
      while (isDigit(this.peek())) this.pos++;
    }
    return JsonValue.ofNumber(parseDecimalAt(this.ptr + <usize>start, this.pos - start));
  }
}

// @ts-ignore: decorator
@inline
function isDigit(c: i32): bool {
  return c >= 0x30 && c <= 0x39;
}


