// Checks a built guest against the deploy rules of docs/guest-abi.md, so a
// broken build fails here rather than at deploy: exports `memory` (not
// imported) with a declared maximum within 1 GiB, exports `handle` or `run`,
// and imports only what the host provides.

const MAX_PAGES = 16384; // 1 GiB, the default FLURRY_MAX_GUEST_MEMORY
const ENV_IMPORTS = new Set(['abort', 'seed', 'trace']);

/** Returns a list of problems (empty when the module is fine). */
export function checkModule(bytes) {
  const problems = [];
  const mod = new WebAssembly.Module(bytes);
  const exports = WebAssembly.Module.exports(mod);
  const imports = WebAssembly.Module.imports(mod);
  const exported = new Map(exports.map((e) => [e.name, e.kind]));
  if (exported.get('memory') !== 'memory') problems.push('does not export memory');
  if (exported.get('handle') !== 'function' && exported.get('run') !== 'function') {
    problems.push('exports neither handle nor run');
  }
  if (exported.has('_start')) problems.push('is a WASI command (_start); build a reactor');
  for (const i of imports) {
    const ok =
      (i.module === 'flurry' && i.kind === 'function') ||
      (i.module === 'env' && i.kind === 'function' && ENV_IMPORTS.has(i.name)) ||
      (i.module === 'wasi_snapshot_preview1' && i.kind === 'function');
    if (!ok) problems.push(`imports ${i.kind} ${i.module}.${i.name}`);
  }
  const limits = memoryLimits(bytes);
  if (limits && limits.maximum === undefined) problems.push('memory has no declared maximum');
  else if (limits && limits.maximum > MAX_PAGES) problems.push(`memory maximum ${limits.maximum} pages is above ${MAX_PAGES}`);
  return problems;
}

/** The limits of the first memory the module defines (memory section, id 5). */
export function memoryLimits(bytes) {
  let pos = 8;
  const u32 = () => {
    let result = 0, shift = 0, b;
    do {
      b = bytes[pos++];
      result += (b & 0x7f) * 2 ** shift;
      shift += 7;
    } while (b & 0x80);
    return result;
  };
  while (pos < bytes.length) {
    const id = bytes[pos++];
    const size = u32();
    if (id === 5) {
      if (u32() === 0) return null;
      const flags = u32();
      const initial = u32();
      return { initial, maximum: flags & 1 ? u32() : undefined };
    }
    pos += size;
  }
  return null;
}
