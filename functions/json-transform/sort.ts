// Stable sort of an array by a field (merge sort: AssemblyScript's
// Array#sort is not stable).

import { JsonValue } from "../lib";
import { compareValues, fieldOf } from "./compare";

/** A new array with the elements of `arr` ordered by field `key`. */
export function sortArray(arr: JsonValue, key: string, descending: bool): JsonValue {
  let n = arr.length;
  let keys = new Array<JsonValue | null>(n);
  let order = new Array<i32>(n);
  for (let i = 0; i < n; i++) {
    keys[i] = fieldOf(arr.at(i), key);
    order[i] = i;
  }
  let scratch = new Array<i32>(n);
  mergeSort(order, scratch, 0, n, keys, descending);
  let out = JsonValue.newArray();
  for (let i = 0; i < n; i++) out.push(arr.at(order[i]));
  return out;
}

function mergeSort(a: Array<i32>, tmp: Array<i32>, lo: i32, hi: i32, keys: Array<JsonValue | null>, desc: bool): void {
  if (hi - lo < 2) return;
  let mid = (lo + hi) >>> 1;
  mergeSort(a, tmp, lo, mid, keys, desc);
  mergeSort(a, tmp, mid, hi, keys, desc);
  let i = lo, j = mid, k = lo;
  while (i < mid && j < hi) {
    // Take from the right only when strictly smaller: that keeps it stable.
    if (compareValues(keys[a[j]], keys[a[i]], desc) < 0) tmp[k++] = a[j++];
    else tmp[k++] = a[i++];
  }
  while (i < mid) tmp[k++] = a[i++];
  while (j < hi) tmp[k++] = a[j++];
  for (let x = lo; x < hi; x++) a[x] = tmp[x];
}
