// One toast per action: a toast with the key of one showing takes its place (the delete's Undo gives
// way to "Restored"), and the same words said twice are said once.
import { afterEach, describe, expect, it } from 'vitest';
import { dismissToast, showToast, toasts } from './toasts.svelte.js';

afterEach(() => {
  for (const t of [...toasts.list]) dismissToast(t.id);
});

const shown = () => toasts.list.map((t) => `${t.kind}: ${t.message}${t.action ? ` [${t.action.label}]` : ''}`);

describe('toasts', () => {
  it('replaces the toast of the same action in its place', () => {
    showToast('info', 'Imported 3 images.');
    showToast('info', 'Deleted “a.png”.', { key: 'delete', action: { label: 'Undo', run: () => {} } });
    showToast('success', 'Restored 1 image.', { key: 'delete' });
    expect(shown()).toEqual(['info: Imported 3 images.', 'success: Restored 1 image.']);
  });

  it('says the same result once, however often it happens', () => {
    showToast('success', 'Note saved.', { key: 'note' });
    showToast('success', 'Note saved.', { key: 'note' });
    showToast('success', 'Prompt copied.');
    showToast('success', 'Prompt copied.');
    expect(shown()).toEqual(['success: Note saved.', 'success: Prompt copied.']);
  });

  it('keeps different results and errors apart', () => {
    showToast('success', 'Note saved.', { key: 'note' });
    showToast('error', 'Saving the tags failed.', { key: 'failed|Saving the tags' });
    showToast('info', 'Something else.');
    expect(toasts.list).toHaveLength(3);
  });
});
