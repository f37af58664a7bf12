/**
 * FLURRY_MAX_GUEST_MEMORY, enforced where guests run. The gateway checks a
 * module at deploy, but a host reads modules from the store, which anything
 * able to write there (or a gateway configured with a larger cap) could fill:
 * every module is checked again here before it is compiled or instantiated.
 *
 * A memory without a declared maximum is refused rather than capped: the
 * gateway never stores one, so such a module did not come through a deploy,
 * and rewriting its limits would change the module whose digest was checked.
 */
import { FlurryError, inspectModule, WASM_PAGE_SIZE, type MemoryLimits } from '@flurry/core';

/** Checks the module's own memory against the cap; answers its declared initial size in bytes. */
export function checkGuestMemory(moduleBytes: Uint8Array, capBytes: number): number {
  let memory: MemoryLimits | undefined;
  try {
    memory = inspectModule(moduleBytes).memory;
  } catch (err) {
    throw new FlurryError('invalid_module', `the module cannot be read: ${(err as Error).message}`);
  }
  if (!memory) throw new FlurryError('invalid_module', 'the module defines no memory of its own');
  if (memory.memory64 || memory.shared) throw new FlurryError('invalid_module', '64-bit and shared memories are not supported');
  const capPages = Math.floor(capBytes / WASM_PAGE_SIZE);
  const limit = `the host's cap of ${capPages} pages (FLURRY_MAX_GUEST_MEMORY, ${capBytes} bytes)`;
  if (memory.maximum === undefined) throw new FlurryError('invalid_module', `the memory declares no maximum; declare one within ${limit}`);
  if (memory.initial > capPages) throw new FlurryError('invalid_module', `the memory's initial ${memory.initial} pages exceed ${limit}`);
  if (memory.maximum > capPages) throw new FlurryError('invalid_module', `the memory's declared maximum of ${memory.maximum} pages exceeds ${limit}`);
  return memory.initial * WASM_PAGE_SIZE;
}
