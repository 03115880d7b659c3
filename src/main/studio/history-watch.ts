// Writes to the history by other processes (`fstudio import`, `fstudio generate`, a second window on
// the same data folder) while this one serves a window: SQLite's `PRAGMA data_version` changes for a
// connection only when another connection has committed, so a check on a short interval is all it
// takes (a few microseconds, no query of the tables). It runs only while someone listens.
import type { History } from './history.js';

export const FOREIGN_WRITES_INTERVAL_MS = 1000;

export class ForeignWrites {
  private timer: NodeJS.Timeout | null = null;
  private last = 0;
  private listeners = 0;

  constructor(
    private readonly history: History,
    /** Called once per interval in which another process committed. */
    private readonly onChange: () => void,
    private readonly intervalMs = FOREIGN_WRITES_INTERVAL_MS,
  ) {}

  private version(): number {
    return this.history.db.pragma('data_version', { simple: true }) as number;
  }

  /** Counts a listener in; the checks run while at least one is. Returns the way out. */
  listen(): () => void {
    this.listeners++;
    if (this.listeners === 1) this.start();
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.listeners--;
      if (this.listeners === 0) this.stop();
    };
  }

  private start(): void {
    this.last = this.version();
    this.timer = setInterval(() => {
      let now: number;
      try {
        now = this.version();
      } catch {
        return this.stop(); // the database was closed under us: the studio is closing
      }
      if (now === this.last) return;
      this.last = now;
      this.onChange();
    }, this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
