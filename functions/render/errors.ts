// The first error met while reading a spec or a model: init fails with it,
// handle answers it with 400.

let first: string = "";

export function fail(message: string): void {
  if (first.length == 0) first = message;
}

export function failed(): bool {
  return first.length > 0;
}

export function failure(): string {
  return first;
}
