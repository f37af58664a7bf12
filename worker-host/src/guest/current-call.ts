/** The call a guest thread is running: the imports act on its context and on its instance's memory. */
import type { CallContext } from './call-context.js';
import { GuestMemory } from './guest-memory.js';

export class CurrentCall {
  readonly memory = new GuestMemory();
  private current: CallContext | undefined;

  get context(): CallContext {
    if (!this.current) throw new Error('a host import was called outside a call');
    return this.current;
  }

  begin(context: CallContext): void {
    this.current = context;
    this.memory.attach(undefined);
  }

  /** Drops the references, so the finished instance and its memory can be collected. */
  end(): void {
    this.current = undefined;
    this.memory.attach(undefined);
  }
}
