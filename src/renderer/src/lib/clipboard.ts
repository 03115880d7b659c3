// Copying text: the Clipboard API where the page may use it (the desktop app, localhost), else the
// old selection copy (a studio served over plain HTTP to another machine has no Clipboard API).
export async function copyText(text: string): Promise<void> {
  if (navigator.clipboard && globalThis.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  const area = document.createElement('textarea');
  area.value = text;
  area.setAttribute('readonly', '');
  area.style.position = 'fixed';
  area.style.opacity = '0';
  document.body.append(area);
  area.select();
  const ok = document.execCommand('copy');
  area.remove();
  if (!ok) throw new Error('This browser did not allow copying; select the prompt and copy it by hand.');
}
