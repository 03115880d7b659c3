// Formatting shared by the CLI, the services' messages and the renderer, so a size reads the same everywhere.

/**
 * Bytes in decimal units (1 MB = 1,000,000 bytes), as disks, file managers and Hugging Face show
 * them: one decimal below 10 ("3.1 MB"), whole numbers above ("605 MB").
 */
export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return 'unknown';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = 0;
  while (Math.abs(v) >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  // 9.96 KB would print as "10.0 KB": round first, then pick the style.
  const oneDecimal = u > 0 && Math.round(v * 10) / 10 < 10;
  return `${oneDecimal ? v.toFixed(1) : Math.round(v)} ${units[u]}`;
}

/** "a, b and c". */
export function listWords(items: readonly string[]): string {
  return items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} and ${items.at(-1)}`;
}

/** A time span for a progress line: "42 s", "3 min 5 s", "2 h 10 min"; "--" when unknown. */
export function formatDuration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return '--';
  if (seconds < 60) return `${Math.ceil(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
}
