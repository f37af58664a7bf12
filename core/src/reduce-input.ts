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
