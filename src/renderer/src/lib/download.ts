// Saves bytes from the API as a file through a Blob URL (works in Electron and the browser).

export function downloadBytes(data: Uint8Array, name: string, mime: string): void {
  // Copy into a fresh ArrayBuffer: the Blob constructor rejects views over SharedArrayBuffer.
  const blob = new Blob([data.slice()], { type: mime });
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.rel = 'noopener';
  document.body.append(a);
  a.click();
  a.remove();
  // Revoke later: Chromium reads the URL asynchronously after click().
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
