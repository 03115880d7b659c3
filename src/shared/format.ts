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
