// A parsed JSON document: one class for every kind of value (a tag plus the
// fields that kind uses), which keeps AssemblyScript code simple and fast.
// Objects keep their keys in insertion order, like JavaScript.

import { parseIntStrict, INVALID_INT } from "../query";

export const enum JsonKind {
  Null,
  Bool,
  Number,
  String,
  Array,
  Object,
}

/** Objects with more keys than this get a hash index for lookups. */
const INDEX_THRESHOLD: i32 = 12;

export class JsonValue {
  kind: JsonKind = JsonKind.Null;
  /** Number value; 1 or 0 for a Bool. */
  num: f64 = 0;
  /** String value. */
  str: string = "";
  /** Elements of an Array; values of an Object (parallel to `keys`).
   * Null while empty: `[]` and `{}` then cost one allocation, not three. */
  items: Array<JsonValue> | null = null;
  /** Keys of an Object; null while empty. */
  keys: Array<string> | null = null;
  private index: Map<string, i32> | null = null;

  static ofNull(): JsonValue {
    return new JsonValue();
  }

  static ofBool(b: bool): JsonValue {
    let v = new JsonValue();
    v.kind = JsonKind.Bool;
    v.num = b ? 1 : 0;
    return v;
  }

  static ofNumber(n: f64): JsonValue {
    let v = new JsonValue();
    v.kind = JsonKind.Number;
    v.num = n;
    return v;
  }

  static ofString(s: string): JsonValue {
    let v = new JsonValue();
    v.kind = JsonKind.String;
    v.str = s;
    return v;
  }

  static newArray(): JsonValue {
    let v = new JsonValue();
    v.kind = JsonKind.Array;
    return v;
  }

  static newObject(): JsonValue {
    let v = new JsonValue();
    v.kind = JsonKind.Object;
    return v;
  }

  get isNull(): bool { return this.kind == JsonKind.Null; }
  get isBool(): bool { return this.kind == JsonKind.Bool; }
  get isNumber(): bool { return this.kind == JsonKind.Number; }
  get isString(): bool { return this.kind == JsonKind.String; }
  get isArray(): bool { return this.kind == JsonKind.Array; }
  get isObject(): bool { return this.kind == JsonKind.Object; }

  /** The Bool's value. */
  get boolValue(): bool { return this.num != 0; }

  /** Elements of an Array or entries of an Object; 0 for scalars. */
  get length(): i32 {
    let items = this.items;
    return items === null ? 0 : items.length;
  }

  /** Element `i` of an Array, or value `i` of an Object. */
  at(i: i32): JsonValue {
    return changetype<Array<JsonValue>>(this.items)[i];
  }

  /** Key `i` of an Object. */
  keyAt(i: i32): string {
    return changetype<Array<string>>(this.keys)[i];
  }

  /** Appends to an Array. */
  push(v: JsonValue): JsonValue {
    let items = this.items;
    if (items === null) this.items = items = new Array<JsonValue>();
    items.push(v);
    return this;
  }

  /** Position of `key` in an Object, or -1. */
  indexOf(key: string): i32 {
    let keys = this.keys;
    if (keys === null) return -1;
    let index = this.index;
    if (index !== null) return index.has(key) ? index.get(key) : -1;
    for (let i = 0; i < keys.length; i++) {
      if (unchecked(keys[i]) == key) return i;
    }
    return -1;
  }

  /** Value of `key` in an Object, or null (also for non-objects). */
  get(key: string): JsonValue | null {
    let i = this.indexOf(key);
    return i < 0 ? null : this.at(i);
  }

  has(key: string): bool {
    return this.indexOf(key) >= 0;
  }

  /** Sets `key` in an Object: replaces the value in place if the key exists
   * (as JavaScript does with duplicate keys), else appends. */
  set(key: string, v: JsonValue): JsonValue {
    let i = this.indexOf(key);
    let items = this.items;
    if (items === null) this.items = items = new Array<JsonValue>();
    if (i >= 0) {
      items[i] = v;
      return this;
    }
    let keys = this.keys;
    if (keys === null) this.keys = keys = new Array<string>();
    keys.push(key);
    items.push(v);
    let index = this.index;
    if (index !== null) {
      index.set(key, keys.length - 1);
    } else if (keys.length > INDEX_THRESHOLD) {
      let m = new Map<string, i32>();
      for (let j = 0; j < keys.length; j++) m.set(keys[j], j);
      this.index = m;
    }
    return this;
  }

  /** Follows a dotted path (`a.b.0.c`; numbers index arrays). The empty
   * path is this value. Null when any step is missing. */
  getPath(path: string): JsonValue | null {
    if (path.length == 0) return this;
    let parts = path.split(".");
    let cur: JsonValue = this;
    for (let i = 0; i < parts.length; i++) {
      let part = parts[i];
      let next: JsonValue | null = null;
      if (cur.kind == JsonKind.Object) {
        next = cur.get(part);
      } else if (cur.kind == JsonKind.Array) {
        let n = parseIntStrict(part);
        if (n != INVALID_INT && n >= 0 && n < <i64>cur.length) next = cur.at(<i32>n);
      }
      if (next === null) return null;
      cur = next;
    }
    return cur;
  }
}
