/**
 * What clients told a `room` service (functions/room) and what it answered,
 * to check the room's state against after faults (docs/reliability.md): the
 * fault tests and the chaos soak use it.
 *
 * Each `/say` carries a text of its own. An answer 200 `{seq}` acknowledges
 * it: the room must hold it at that seq. Any other outcome (an error answer,
 * no answer) leaves it unknown: a request in flight when a host paused or the
 * broker went away may have been applied or not, so the room may hold it, once.
 * The room's messages must then be: every acknowledged text at its seq, and
 * nothing else but unknown texts, each at most once, with seqs 1, 2, 3, ...
 */

export interface RoomMessage {
  seq: number;
  name: string;
  text: string;
}

export interface RoomCheck {
  /** Acknowledged texts the room does not hold at their seq: lost. */
  lost: string[];
  /** Texts the room holds that no client sent, or holds twice. */
  phantom: string[];
  /** Whether the seqs run 1..n without gaps. */
  contiguous: boolean;
  acknowledged: number;
  /** Unknown outcomes the room turned out to hold (applied) and not (never applied). */
  unknownApplied: number;
  unknownDropped: number;
}

export class RoomLedger {
  private readonly acked = new Map<string, number>();
  private readonly unknown = new Set<string>();

  /** A /say was answered 200 with this seq. */
  acknowledge(text: string, seq: number): void {
    this.unknown.delete(text);
    this.acked.set(text, seq);
  }

  /** A /say got another answer or none. */
  uncertain(text: string): void {
    if (!this.acked.has(text)) this.unknown.add(text);
  }

  get acknowledged(): number {
    return this.acked.size;
  }

  /** Compares the room's messages (GET /messages?since=0) with the ledger. */
  check(messages: RoomMessage[]): RoomCheck {
    const seen = new Map<string, number>();
    const phantom: string[] = [];
    let contiguous = true;
    messages.forEach((m, i) => {
      if (m.seq !== i + 1) contiguous = false;
      if (seen.has(m.text) || (!this.acked.has(m.text) && !this.unknown.has(m.text))) phantom.push(m.text);
      seen.set(m.text, m.seq);
    });
    const lost = [...this.acked].filter(([text, seq]) => seen.get(text) !== seq).map(([text]) => text);
    const unknownApplied = [...this.unknown].filter((t) => seen.has(t)).length;
    return { lost, phantom, contiguous, acknowledged: this.acked.size, unknownApplied, unknownDropped: this.unknown.size - unknownApplied };
  }
}
