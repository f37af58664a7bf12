// Projection: each object element reduced to the listed top-level fields,
// in the listed order; fields it lacks are left out, non-objects kept as is.

import { JsonValue } from "../lib";

export function pickFields(arr: JsonValue, keys: string[]): JsonValue {
  let out = JsonValue.newArray();
  for (let i = 0; i < arr.length; i++) {
    let element = arr.at(i);
    if (!element.isObject) {
      out.push(element);
      continue;
    }
    let picked = JsonValue.newObject();
    for (let k = 0; k < keys.length; k++) {
      let v = element.get(keys[k]);
      if (v !== null) picked.set(keys[k], v);
    }
    out.push(picked);
  }
  return out;
}
