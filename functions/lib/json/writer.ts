// Writing JSON as UTF-8, either streaming (JsonWriter: no tree needed) or
// from a JsonValue (stringify). Output matches JavaScript's JSON.stringify:
// same escapes, same number text, non-finite numbers as null.

import { ByteWriter } from "../bytes";
import { formatDouble } from "../float-format";
import { JsonKind, JsonValue } from "./value";

const HEX = "0123456789abcdef";

/** Appends `s` as a quoted JSON string. */
export function writeJsonString(out: ByteWriter, s: string): void {
  let n = s.length;
  out.reserve(n + 2);
  out.byte(0x22);
  let p = changetype<usize>(s);
  for (let i = 0; i < n; i++) {
    let c = <i32>load<u16>(p + (<usize>i << 1));
    if (c >= 0x20 && c < 0x80) {
      if (c == 0x22 || c == 0x5c) out.byte(0x5c);
      out.byte(<u8>c);
    } else if (c < 0x20) {
      out.byte(0x5c);
      if (c == 0x08) out.byte(0x62);
      else if (c == 0x0c) out.byte(0x66);
      else if (c == 0x0a) out.byte(0x6e);
      else if (c == 0x0d) out.byte(0x72);
      else if (c == 0x09) out.byte(0x74);
      else writeU4(out, c);
    } else if (c < 0x800) {
      out.byte(<u8>(0xc0 | (c >> 6)));
      out.byte(<u8>(0x80 | (c & 63)));
    } else if ((c & 0xf800) != 0xd800) {
      out.byte(<u8>(0xe0 | (c >> 12)));
      out.byte(<u8>(0x80 | ((c >> 6) & 63)));
      out.byte(<u8>(0x80 | (c & 63)));
    } else {
      let c2 = i + 1 < n ? <i32>load<u16>(p + (<usize>(i + 1) << 1)) : 0;
      if (c < 0xdc00 && (c2 & 0xfc00) == 0xdc00) {
        let cp = 0x10000 + ((c & 0x3ff) << 10) + (c2 & 0x3ff);
        out.byte(<u8>(0xf0 | (cp >> 18)));
        out.byte(<u8>(0x80 | ((cp >> 12) & 63)));
        out.byte(<u8>(0x80 | ((cp >> 6) & 63)));
        out.byte(<u8>(0x80 | (cp & 63)));
        i++;
      } else {
        // A lone surrogate: escaped, as well-formed JSON.stringify does.
        out.byte(0x5c);
        writeU4(out, c);
      }
    }
  }
  out.byte(0x22);
}

function writeU4(out: ByteWriter, c: i32): void {
  out.byte(0x75);
  for (let shift = 12; shift >= 0; shift -= 4) {
    out.byte(<u8>HEX.charCodeAt((c >> shift) & 15));
  }
}

/** Appends a JSON number (null when not finite). */
export function writeJsonNumber(out: ByteWriter, x: f64): void {
  if (!isFinite(x)) out.string("null");
  else out.string(formatDouble(x));
}

/** Appends a value as compact JSON. */
export function writeJsonValue(out: ByteWriter, v: JsonValue): void {
  switch (v.kind) {
    case JsonKind.Null: out.string("null"); break;
    case JsonKind.Bool: out.string(v.boolValue ? "true" : "false"); break;
    case JsonKind.Number: writeJsonNumber(out, v.num); break;
    case JsonKind.String: writeJsonString(out, v.str); break;
    case JsonKind.Array: {
      out.byte(0x5b);
      for (let i = 0; i < v.length; i++) {
        if (i > 0) out.byte(0x2c);
        writeJsonValue(out, v.at(i));
      }
      out.byte(0x5d);
      break;
    }
    default: {
      out.byte(0x7b);
      for (let i = 0; i < v.length; i++) {
        if (i > 0) out.byte(0x2c);
        writeJsonString(out, v.keyAt(i));
        out.byte(0x3a);
        writeJsonValue(out, v.at(i));
      }
      out.byte(0x7d);
    }
  }
}

/** A value as compact JSON text. */
export function stringify(v: JsonValue): string {
  let out = new ByteWriter();
  writeJsonValue(out, v);
  return out.toString();
}

/** Streams JSON without building a tree. Commas are placed automatically:
 * call `key` before each value inside an object. */
export class JsonWriter {
  readonly out: ByteWriter;
  /** One entry per open container: true until its first member. */
  private first: Array<bool> = new Array<bool>();
  private afterKey: bool = false;

  constructor(out: ByteWriter | null = null) {
    this.out = out === null ? new ByteWriter() : changetype<ByteWriter>(out);
  }

  private beforeValue(): void {
    if (this.afterKey) {
      this.afterKey = false;
      return;
    }
    this.separate();
  }

  private separate(): void {
    let depth = this.first.length;
    if (depth == 0) return;
    if (this.first[depth - 1]) this.first[depth - 1] = false;
    else this.out.byte(0x2c);
  }

  beginObject(): JsonWriter {
    this.beforeValue();
    this.out.byte(0x7b);
    this.first.push(true);
    return this;
  }

  endObject(): JsonWriter {
    this.first.pop();
    this.out.byte(0x7d);
    return this;
  }

  beginArray(): JsonWriter {
    this.beforeValue();
    this.out.byte(0x5b);
    this.first.push(true);
    return this;
  }

  endArray(): JsonWriter {
    this.first.pop();
    this.out.byte(0x5d);
    return this;
  }

  /** The key of the next member of the current object. */
  key(name: string): JsonWriter {
    this.separate();
    writeJsonString(this.out, name);
    this.out.byte(0x3a);
    this.afterKey = true;
    return this;
  }

  string(s: string): JsonWriter {
    this.beforeValue();
    writeJsonString(this.out, s);
    return this;
  }

  number(x: f64): JsonWriter {
    this.beforeValue();
    writeJsonNumber(this.out, x);
    return this;
  }

  int(x: i64): JsonWriter {
    this.beforeValue();
    this.out.int(x);
    return this;
  }

  bool(b: bool): JsonWriter {
    this.beforeValue();
    this.out.string(b ? "true" : "false");
    return this;
  }

  nullValue(): JsonWriter {
    this.beforeValue();
    this.out.string("null");
    return this;
  }

  value(v: JsonValue): JsonWriter {
    this.beforeValue();
    writeJsonValue(this.out, v);
    return this;
  }

  /** The JSON written so far, as text. */
  toString(): string {
    return this.out.toString();
  }
}
