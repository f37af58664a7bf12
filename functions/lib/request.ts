// The HTTP request of a `handle` call. Outside a request (`init`, `run`,
// `reduce`) the host answers empty strings and no headers.

import {
  request_header_count, request_header_name, request_header_value,
  request_method, request_path, request_query,
} from "./abi";
import { hostIndexedString, hostString } from "./host-string";
import { Query } from "./query";

/** The method, upper case (`GET`). */
export function requestMethod(): string {
  return hostString(request_method);
}

/** The path below the function, starting with `/` (`/fn/echo/a/b` gives `/a/b`). */
export function requestPath(): string {
  return hostString(request_path);
}

/** The raw query string without `?` (may be empty). */
export function requestQueryString(): string {
  return hostString(request_query);
}

/** The query string parsed into parameters. */
export function requestQuery(): Query {
  return Query.parse(requestQueryString());
}

/** One request header; names are lower case. */
export class Header {
  constructor(public name: string, public value: string) {}
}

/** Number of request headers. */
export function requestHeaderCount(): i32 {
  return request_header_count();
}

/** Name of header `i` (lower case), or null when out of range. */
export function requestHeaderName(i: i32): string | null {
  return hostIndexedString(request_header_name, i);
}

/** Value of header `i`, or null when out of range. */
export function requestHeaderValue(i: i32): string | null {
  return hostIndexedString(request_header_value, i);
}

/** All request headers in the order the host gives them. */
export function requestHeaders(): Header[] {
  let count = request_header_count();
  let out = new Array<Header>();
  for (let i = 0; i < count; i++) {
    let name = requestHeaderName(i);
    let value = requestHeaderValue(i);
    if (name === null || value === null) break;
    out.push(new Header(name, value));
  }
  return out;
}

/** Value of the first header called `name` (any case), or null. */
export function requestHeader(name: string): string | null {
  let wanted = name.toLowerCase();
  let count = request_header_count();
  for (let i = 0; i < count; i++) {
    let n = requestHeaderName(i);
    if (n !== null && n == wanted) return requestHeaderValue(i);
  }
  return null;
}
