// A page object for the studio UI: every locator goes through roles and accessible names,
// so a test reads like what a user does and breaks when the UI stops being accessible.
import { mkdir } from 'node:fs/promises';
import { expect, type Locator, type Page } from '@playwright/test';

export interface FileToImport {
  name: string;
  mimeType: string;
  buffer: Buffer;
}

export const screenshotDir = 'test-results/screenshots';

export class StudioApp {
  readonly search: Locator;
  readonly count: Locator;
  readonly grid: Locator;
  readonly favouritesOnly: Locator;
  readonly detail: Locator;
  readonly errors: Locator;
  readonly notifications: Locator;

  constructor(readonly page: Page) {
    this.search = page.getByRole('searchbox', { name: 'Search the gallery' });
    this.count = page.getByRole('status', { name: 'Image count' });
    this.grid = page.getByRole('listbox', { name: 'Images' });
    this.favouritesOnly = page.getByRole('checkbox', { name: 'Favourites only' });
    this.detail = page.getByRole('complementary');
    this.errors = page.getByRole('alert', { name: 'Errors' });
    this.notifications = page.getByRole('status', { name: 'Notifications' });
  }

  nav(name: 'Gallery' | 'Settings' | 'System'): Locator {
    return this.page.getByRole('navigation', { name: 'Main' }).getByRole('button', { name: new RegExp(`^${name}`) });
  }

  option(name: string | RegExp): Locator {
    return this.grid.getByRole('option', { name });
  }

  async expectCount(n: number): Promise<void> {
    await expect(this.count).toHaveText(`${n.toLocaleString('en-US')} ${n === 1 ? 'image' : 'images'}`);
  }

  /** Imports through the real file picker (the "Import images…" button). */
  async importFiles(files: FileToImport[]): Promise<void> {
    const chooser = this.page.waitForEvent('filechooser');
    await this.page.getByRole('button', { name: 'Import images…' }).first().click();
    await (await chooser).setFiles(files);
  }

  async searchFor(text: string): Promise<void> {
    await this.search.fill(text);
    await this.search.press('Enter');
  }

  async screenshot(name: string): Promise<void> {
    await mkdir(screenshotDir, { recursive: true });
    // Let thumbnails finish decoding so the picture shows what a user sees.
    await this.page.waitForFunction(() => Array.from(document.images).every((img) => img.complete));
    await this.page.screenshot({ path: `${screenshotDir}/${name}.png` });
  }

  /**
   * Screenshots of the page as it is, in both themes, at the desktop size and a small window, as
   * `<name>-<width>-<theme>.png`; `show` is scrolled into view at each size (what the shot is about,
   * when the window is too small for all). Ends at 1280x800, light.
   */
  async screenshotAll(name: string, show?: Locator): Promise<void> {
    for (const [w, h] of [
      [1280, 800],
      [800, 600],
    ] as const) {
      await this.page.setViewportSize({ width: w, height: h });
      await show?.scrollIntoViewIfNeeded();
      for (const scheme of ['light', 'dark'] as const) {
        await this.page.emulateMedia({ colorScheme: scheme });
        await this.screenshot(`${name}-${w}-${scheme}`);
      }
    }
    await this.page.setViewportSize({ width: 1280, height: 800 });
    await this.page.emulateMedia({ colorScheme: 'light' });
  }
}
