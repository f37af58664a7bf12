/** The input of `reduce(count)` (docs/guest-abi.md): every clone's output in index order, each as a little-endian u32 length and its bytes. */
export function frameReduceInput(outputs: readonly Uint8Array[]): Uint8Array {
  const framed = new Uint8Array(outputs.reduce((n, o) => n + 4 + o.length, 0));
  const view = new DataView(framed.buffer);
  let offset = 0;
  for (const output of outputs) {
    view.setUint32(offset, output.length, true);
    framed.set(output, offset + 4);
    offset += 4 + output.length;
  }
  return framed;
}

/**
 * The `count` outputs framed by frameReduceInput (a task job's results of several tasks: CloneResult.taskRunMs),
 * as views of `framed`; undefined unless it holds exactly `count` frames.
 */
export function unframeOutputs(framed: Uint8Array, count: number): Uint8Array[] | undefined {
  const view = new DataView(framed.buffer, framed.byteOffset, framed.byteLength);
  const out: Uint8Array[] = [];
  let offset = 0;
  while (out.length < count) {
    if (offset + 4 > framed.length) return undefined;
    const length = view.getUint32(offset, true);
    if (offset + 4 + length > framed.length) return undefined;
    out.push(framed.subarray(offset + 4, offset + 4 + length));
    offset += 4 + length;
  }
  return offset === framed.length ? out : undefined;
}

/** The tasks first..last a task results subject's last token names (`<first>-<last>`, JobSubjects.taskResults); undefined for any other token. */
export function taskRange(token: string): { first: number; last: number } | undefined {
  const m = /^(\d{1,9})-(\d{1,9})$/.exec(token);
  if (!m) return undefined;
  const first = Number(m[1]);
  const last = Number(m[2]);
  return last >= first ? { first, last } : undefined;
}
