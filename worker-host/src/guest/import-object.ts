/**
 * The import object for one module, built from the module's own import list:
 * every `flurry`, `env` (AssemblyScript) and WASI function it names, an ENOSYS
 * stub for WASI functions the shim lacks, and a clear error for anything else.
 * A clone variant's memory import is left out: each instantiation gives its own.
 */
import { CLONE_MEMORY_IMPORT } from '@flurry/core/basics';
import { assemblyScriptImports, flurryImports } from './abi.js';
import type { CurrentCall } from './current-call.js';
import { GuestFailure } from './guest-failure.js';
import { enosys, WASI_MODULE, wasiImports } from './wasi.js';

type HostFunctions = Record<string, Record<string, (...args: never[]) => unknown>>;

/** Every host function a guest may import, bound to a thread's current call. Build once per thread. */
export function hostFunctions(call: CurrentCall): HostFunctions {
  return { flurry: flurryImports(call), env: assemblyScriptImports(call), [WASI_MODULE]: wasiImports(call) };
}

export function buildImportObject(module: WebAssembly.Module, host: HostFunctions): WebAssembly.Imports {
  const imports: Record<string, Record<string, WebAssembly.ImportValue>> = {};
  for (const { module: from, name, kind } of WebAssembly.Module.imports(module)) {
    if (from === CLONE_MEMORY_IMPORT.module && name === CLONE_MEMORY_IMPORT.name && kind === 'memory') continue;
    const provided = Object.hasOwn(host, from) && Object.hasOwn(host[from], name) ? host[from][name] : undefined;
    const fn = provided ?? (from === WASI_MODULE ? enosys : undefined);
    if (!fn) throw new GuestFailure('invalid_module', `module imports ${from}.${name} which Flurry does not provide`);
    if (kind !== 'function') throw new GuestFailure('invalid_module', `module imports ${from}.${name} as a ${kind}; Flurry provides it as a function`);
    (imports[from] ??= {})[name] = fn as WebAssembly.ImportValue;
  }
  return imports;
}
