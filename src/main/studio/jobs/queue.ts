// The generation queue behind a small interface: add, order, claim the next. The default keeps it in the
// history database (runs in state 'queued', ordered by queue_order), so the queue survives a restart and
// every process that opens the data folder sees the same one. Another backend (a distributed queue
// feeding many GPU machines) implements the same four methods; the loop and the UI do not change.
import type { History, RunRow } from '../history.js';

export interface RunQueue {
  /** Puts a queued run at the end. */
  add(runId: number): void;
  /** The queued runs in the order they will run. */
  list(): RunRow[];
  /** Moves a queued run before another (or to the end with null). */
  move(runId: number, before: number | null): void;
  /** Puts a queued run first (a resumed run goes on before new ones). */
  first(runId: number): void;
  /**
   * Claims the next run for this process: it moves from queued to running atomically, so two processes
   * never run the same one. Null when the queue is empty.
   */
  claim(): RunRow | null;
}

export class SqliteRunQueue implements RunQueue {
  constructor(private readonly history: History) {}

  add(runId: number): void {
    this.history.appendToQueue(runId, Date.now());
  }

  list(): RunRow[] {
    return this.history.queuedRuns();
  }

  move(runId: number, before: number | null): void {
    this.history.moveInQueue(runId, before, Date.now());
  }

  first(runId: number): void {
    const head = this.list()[0];
    if (head && head.id !== runId) this.move(runId, head.id);
  }

  claim(): RunRow | null {
    for (const run of this.list()) {
      try {
        return this.history.transitionRun(run.id, { to: 'running' }, Date.now());
      } catch {
        continue; // another process claimed it first (compare-and-set): try the next
      }
    }
    return null;
  }
}
