/**
 * The fault handler thread's death: one per process (vitest runs each test
 * file in a process of its own), so this file makes it happen once, through
 * the test hook that fails the thread's epoll_wait the way a real failure
 * would, and its tests look at what it left, in order.
 * Nothing here waits for time to pass: each step waits for the event it needs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistrationSlot, terminateGuestThread } from '../guest/registration-slot.js';
import { onHandlerDeath } from './handler-death.js';
import { loadNativePager, nativePagerStatus } from './pager.js';
import { GuestWorker, PAGE, pageBytes, until, WASM_PAGE } from './fixtures/harness.mjs';

const status = nativePagerStatus();
if (!status.available) console.warn(`[native pager] skipping handler-death tests: ${status.reason}`);
const pager = status.available ? loadNativePager() : undefined!;
const caps = status.capabilities;
const syncSkip = !caps?.writeProtect || !caps.wpUnpopulated ? 'synchronous write-protect (WP_UNPOPULATED) unavailable' : undefined;
if (status.available && syncSkip) console.warn(`[native pager] skipping the sync tracker's handler-death test: ${syncSkip}`);

const MAX_BYTES = 64 * WASM_PAGE;

describe.skipIf(!status.available)('native pager: the fault handler thread dies', () => {
  let store: number;
  let guest: GuestWorker;
  let reg: number;
  /** The guest's read of page 3, asleep in its fault when the handler dies. */
  let asleep: Promise<number[]>;
  let writer: GuestWorker | undefined;
  let shared: WebAssembly.Memory | undefined;
  let tracker: number | undefined;
  const heard: string[][] = [[], []];
  let reason: string;

  beforeAll(async () => {
    store = pager.createStore(16);
    const missed = new Promise<number[]>((resolve) => pager.setMissHandler(store, resolve));
    guest = await GuestWorker.start();
    await guest.call('create', { initialPages: 1, maximumPages: 64 });
    reg = await guest.register(MAX_BYTES, store);
    asleep = guest.call('load32', { addrs: [3 * PAGE] });
    // The miss handler is called once the handler thread has parked the fault: the guest sleeps in it.
    expect(await missed).toEqual([3]);
    if (!syncSkip) {
      // A 'sync' tracker (this thread's) over a memory a worker writes: its write faults are the handler's too.
      writer = await GuestWorker.start();
      shared = (await writer.call('createShared', { initialPages: 1, maximumPages: 64 })) as WebAssembly.Memory;
      tracker = pager.trackDirty(shared, MAX_BYTES, 'sync');
      await writer.call('store32', { addr: 2 * PAGE, value: 2 });
      expect(Array.from(pager.collectDirty(tracker))).toEqual([2]);
    }
    // Two listeners, as two page caches would be.
    const died = heard.map(
      (calls) =>
        new Promise<void>((resolve) =>
          onHandlerDeath(pager, (why) => {
            calls.push(why);
            resolve();
          }),
        ),
    );
    pager.debugFailHandler('EBADF');
    await Promise.all(died);
    reason = heard[0][0];
  });

  afterAll(async () => {
    if (tracker !== undefined) pager.stopTracking(tracker);
    await writer?.worker.terminate();
    await guest?.stop(pager);
    if (store) {
      pager.setMissHandler(store, null);
      await until(() => pager.storeStats(store).registrations === 0, 5000, 'registrations closed');
      pager.dropStore(store);
    }
  });

  it('handler death - every listener hears the reason once, and the addon keeps it', () => {
    expect(reason).toMatch(/^epoll_wait failed: EBADF \(.+\), injected by debugFailHandler$/);
    expect(heard).toEqual([[reason], [reason]]);
    expect(pager.debugState()).toMatchObject({ handlerThread: false, handlerDeath: reason });
    expect(() => pager.debugFailHandler('EBADF')).toThrow(/no handler thread runs/);
  });

  it('handler death - a listener added after the death hears it too; one removed first does not', async () => {
    const late = new Promise<string>((resolve) => onHandlerDeath(pager, resolve));
    let removedHeard = false;
    onHandlerDeath(pager, () => (removedHeard = true))();
    expect(await late).toBe(reason);
    expect(removedHeard).toBe(false);
  });

  it('handler death - the registration is failed with the reason; its sleeping fault was not zero-filled', () => {
    expect(pager.registrationStats(reg)).toMatchObject({ failed: reason, pending: 1, zeroPages: 0, populated: 0 });
    expect(pager.storeStats(store)).toMatchObject({ waitingFaults: 1, waitingPages: 1 });
  });

  it('handler death - a fault parked before the death still gets its page from storePut', async () => {
    pager.storePut(store, 3, pageBytes(3, 40));
    expect(await asleep).toEqual([43]);
  });

  it('handler death - a fault taken after the death is read by nobody until its thread is released and terminated', async () => {
    const read = guest.call('load32', { addrs: [5 * PAGE] });
    // zeroFillPending reads the queued fault itself (the handler is gone) and answers it with zeros: the terminate path.
    await until(() => pager.zeroFillPending(reg) > 0, 5000, 'the new fault queued');
    expect(await read).toEqual([0]);
    const slot = new RegistrationSlot();
    slot.set(reg);
    await terminateGuestThread(guest.worker, slot, pager);
    // The worker's teardown closed its registration.
    await until(() => pager.storeStats(store).registrations === 0, 5000, 'the registration closed with its thread');
  });

  it('handler death - new registrations are refused, naming the reason', async () => {
    const next = await GuestWorker.start();
    try {
      await next.call('create', { initialPages: 1, maximumPages: 64 });
      const refused = next.call('register', { maximumBytes: MAX_BYTES, storeId: store });
      await expect(refused).rejects.toMatchObject({ code: 'ERR_FLURRY_HANDLER_DEAD' });
      await expect(refused).rejects.toThrow(`registerMemory: the pager's fault handler thread died (${reason})`);
      expect(() => pager.trackDirty(new WebAssembly.Memory({ initial: 1, maximum: 4 }), 4 * WASM_PAGE, 'async')).toThrow(
        `trackDirty: the pager's fault handler thread died (${reason})`,
      );
    } finally {
      await next.worker.terminate();
    }
  });

  it.skipIf(!!syncSkip)('handler death - a sync tracker is unprotected (writers go on) and collectDirty refuses', async () => {
    // Hangs (the test times out) if the page were still write-protected: nobody would serve the fault.
    await writer!.call('store32', { addr: 9 * PAGE, value: 9 });
    expect(await writer!.call('load32', { addrs: [9 * PAGE, 2 * PAGE] })).toEqual([9, 2]);
    expect(pager.registrationStats(tracker!).failed).toBe(reason);
    expect(() => pager.collectDirty(tracker!)).toThrow(`collectDirty: the pager's fault handler thread died (${reason})`);
  });
});
