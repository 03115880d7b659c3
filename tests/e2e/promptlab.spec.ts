// The Prompt Lab page end to end through `fstudio serve` with the tiny GPT-2 (tests/fixtures/text): build a
// few-shot sentiment classifier, save it, try it, run it over a CSV file written here (rows stream into the
// table), export the rows as CSV and check them against the file, explore its variants and read the
// charts' numbers, and find the runs in the history search. Screenshots in both themes.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from '@playwright/test';
import { expect, installTinyModels, test } from './fixtures.js';
import { StudioApp } from './studio-app.js';

const mod = process.platform === 'darwin' ? 'Meta' : 'Control';

const reviews: [string, string][] = [
  ['A wonderful, moving film.', 'Positive'],
  ['Dull and far too long.', 'Negative'],
  ['I laughed the whole way through.', 'Positive'],
  ['The plot makes no sense, sadly.', 'Negative'],
  ['Brilliant acting, "stunning" views.', 'Positive'],
  ['Boring, boring, boring.', 'Negative'],
];
/** 120 rows: the reviews again and again, numbered so every input differs. */
const rows = Array.from({ length: 120 }, (_, i) => {
  const [text, label] = reviews[i % reviews.length]!;
  return { text: `${text} (${i + 1})`, label };
});
const csvField = (s: string) => (/[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s);

async function openLab(page: Page): Promise<void> {
  await page.keyboard.press(`${mod}+2`);
  await expect(page.getByRole('heading', { name: 'Prompt Lab', level: 1 })).toBeVisible();
}

test('Prompt Lab: build, save, try, run over a CSV, export, explore and find the runs', async ({
  studioPage: page,
  server,
}) => {
  test.setTimeout(300_000);
  const app = new StudioApp(page);
  const models = await installTinyModels(server.dataDir);
  const dir = await mkdtemp(join(tmpdir(), 'fstudio-lab-'));
  const csvPath = join(dir, 'reviews.csv');
  await writeFile(csvPath, 'text,label\n' + rows.map((r) => `${csvField(r.text)},${r.label}`).join('\n') + '\n');

  try {
    await openLab(page);
    const editor = page.getByRole('form', { name: 'Prompt model' });

    // ---- the model: the starter classifier on the tiny GPT-2, renamed; problems shown inline ----
    await editor.getByRole('combobox', { name: 'Language model' }).selectOption(models.text);
    await editor.getByRole('textbox', { name: 'Prompt model name' }).fill('Sentiment e2e');
    await editor.getByRole('textbox', { name: 'Query template' }).fill('Review: \nSentiment:');
    await expect(editor.getByRole('list', { name: 'Problems' })).toContainText(
      'The query template has no {input} slot: add {input} where each input goes.',
    );
    await editor.getByRole('textbox', { name: 'Query template' }).fill('Review: {input}\nSentiment:');
    await expect(editor.getByRole('list', { name: 'Problems' })).toHaveCount(0);
    await editor.getByRole('textbox', { name: 'Sample input' }).fill('Great fun');
    await expect(editor.getByLabel('Rendered prompt')).toContainText(
      'Review: Two hours I will never get back.\nSentiment: Negative',
    );
    await expect(editor.getByLabel('Rendered prompt')).toContainText('Review: Great fun\nSentiment:');
    // Reorder: example 2 moves up, and the preview follows.
    await editor.getByRole('button', { name: 'Move example 2 up' }).click();
    await expect(editor.getByRole('textbox', { name: 'Example 1 input' })).toHaveValue(
      'Two hours I will never get back.',
    );

    await editor.getByRole('button', { name: 'Save' }).click();
    await expect(app.notifications).toContainText('Saved “Sentiment e2e” as version 1.');
    await editor.getByRole('textbox', { name: 'Instructions' }).fill('Is each review Positive or Negative?');
    await editor.getByRole('button', { name: 'Save' }).click();
    await expect(app.notifications).toContainText('Saved “Sentiment e2e” as version 2.');
    await expect(editor.getByRole('combobox', { name: 'Version' })).toHaveValue('2');

    // Export JSON, and import it back under another name: a new model with the same prompt.
    const saving = page.waitForEvent('download');
    await editor.getByRole('button', { name: 'Export JSON' }).click();
    const json = JSON.parse(await readFile(await (await saving).path(), 'utf8')) as Record<string, unknown>;
    expect(json).toMatchObject({
      format: 'fstudio-prompt-model',
      name: 'Sentiment e2e',
      version: 2,
      instructions: 'Is each review Positive or Negative?',
      labels: [{ name: 'Positive' }, { name: 'Negative' }],
    });
    await editor.locator('input[type="file"]').setInputFiles({
      name: 'copy.json',
      mimeType: 'application/json',
      buffer: Buffer.from(JSON.stringify({ ...json, name: 'Sentiment copy' })),
    });
    await expect(app.notifications).toContainText('Imported “Sentiment copy” as version 1.');
    await editor.getByRole('combobox', { name: 'Saved models' }).selectOption('Sentiment e2e');
    await expect(editor.getByRole('textbox', { name: 'Prompt model name' })).toHaveValue('Sentiment e2e');
    await expect(editor.getByRole('combobox', { name: 'Version' })).toHaveValue('2');

    // ---- try one input: a bar per label, raw and calibrated ----
    await page.getByRole('textbox', { name: 'Try input' }).fill('What a lovely film.');
    await page.keyboard.press(`${mod}+Enter`);
    const tried = page.getByRole('region', { name: 'Try it' });
    await expect(tried.getByText(/^Answer:/)).toBeVisible();
    await expect(
      tried.getByRole('img', { name: /^Label probabilities: Positive \d+% \(calibrated \d+%\), Negative/ }),
    ).toBeVisible();
    await app.screenshotAll('promptlab-try', tried);

    // ---- run over the CSV: rows stream into the table, accuracy against the gold column ----
    await page.getByRole('tab', { name: 'Run over a file' }).click();
    const run = page.getByRole('region', { name: 'Run over a file' });
    await run.getByRole('textbox', { name: 'Inputs file path' }).fill(csvPath);
    await run.getByRole('textbox', { name: 'Gold column' }).fill('label');
    // Record the row counts the pager shows while the run goes, to see the rows arrive in batches.
    await page.evaluate(() => {
      const seen: string[] = [];
      (window as unknown as { seenCounts: string[] }).seenCounts = seen;
      setInterval(() => {
        const text = document.querySelector('nav[aria-label="Result pages"]')?.textContent ?? '';
        const n = /([\d,]+) rows/.exec(text)?.[1];
        if (n && seen.at(-1) !== n) seen.push(n);
      }, 20);
    });
    await page.keyboard.press(`${mod}+Enter`);
    const pager = run.getByRole('navigation', { name: 'Result pages' });
    await expect(pager).toContainText('120 rows', { timeout: 120_000 });
    const summary = run.getByRole('region', { name: 'Run summary' }).or(run.getByLabel('Run summary'));
    await expect(summary).toContainText('done', { timeout: 60_000 });
    await expect(summary).toContainText(/accuracy \d+(\.\d)?%/);
    await expect(summary).toContainText('from reviews.csv');
    const seen = await page.evaluate(() => (window as unknown as { seenCounts: string[] }).seenCounts.map(Number));
    expect(seen.at(-1)).toBe(120);
    expect(seen.some((n) => n > 0 && n < 120)).toBe(true); // streamed: counts between none and all
    const table = run.getByRole('table', { name: 'Results' });
    // While following the run the table showed its newest rows: the last page (rows 101-120); the pages
    // hold the file's rows in order.
    await expect(pager).toContainText(/Page \d of 3 · 120 rows/);
    const previous = pager.getByRole('button', { name: 'Previous' });
    while (await previous.isEnabled()) await previous.click();
    await expect(pager).toContainText('Page 1 of 3');
    await expect(table.getByRole('row')).toHaveCount(1 + 50); // header + a page
    await expect(table.getByRole('row').nth(1)).toContainText('A wonderful, moving film. (1)');
    await expect(table.getByRole('row').nth(2)).toContainText(
      /Dull and far too long\. \(2\).*(Positive|Negative).*Negative/,
    );
    await app.screenshotAll('promptlab-run', table);

    // ---- export CSV: one line per input, the input and gold columns as in the file ----
    const download = page.waitForEvent('download');
    await run.getByRole('button', { name: 'Export CSV' }).click();
    const file = await (await download).path();
    const exported = (await readFile(file, 'utf8')).trim().split(/\r?\n/);
    expect(exported).toHaveLength(1 + rows.length);
    const header = exported[0]!.split(',');
    expect(header).toEqual(expect.arrayContaining(['input', 'answer']));
    expect(exported[1]).toContain('A wonderful, moving film. (1)');
    expect(exported[5]).toContain('"Brilliant acting, ""stunning"" views. (5)"');
    for (const line of exported.slice(1)) expect(line).toMatch(/Positive|Negative/);

    // ---- the explorer: orderings, leave-one-out and wordings over the first 12 inputs ----
    await page.getByRole('tab', { name: 'Explorer' }).click();
    const explore = page.getByRole('region', { name: 'Explorer' });
    await explore.getByRole('spinbutton', { name: 'Orderings of the examples' }).fill('4');
    await explore.getByRole('spinbutton', { name: 'Explorer input limit' }).fill('12');
    await explore.getByRole('button', { name: 'Explore' }).click();
    const flip = explore.getByRole('img', {
      name: /^Flip rate per input: raw mean \d+%, entropy [\d.]+ bits; calibrated mean \d+%, entropy [\d.]+ bits; most unstable: input \d+ at \d+%$/,
    });
    await expect(flip).toBeVisible({ timeout: 120_000 });
    // The original + 4 other orderings + 4 leave-one-out + 3 wordings (good, great, bad) = 12 variants.
    await expect(explore).toContainText('12 variants × 12 inputs');
    const strip = explore.getByRole('img', {
      name: /^Accuracy per variant: raw mean \d+% ± \d+% \(population sd\), min \d+%, max \d+%; calibrated mean .*; 12 variants$/,
    });
    await expect(strip).toBeVisible();
    // The numbers agree with each other: min <= mean <= max, and the raw card says the same mean ± sd.
    const [mean, sd, min, max] = ((await strip.getAttribute('aria-label'))!.match(/\d+(?=%)/g) ?? []).map(Number);
    expect(min).toBeLessThanOrEqual(mean!);
    expect(mean).toBeLessThanOrEqual(max!);
    await expect(explore.getByLabel('Raw answers')).toContainText(`accuracy ${mean}% ± ${sd}% (${min}%–${max}%)`);
    await expect(
      explore.getByRole('img', {
        name: /^Class share per variant: raw: data \(gold\): Positive 50%, Negative 50%; the prompt as written: Positive \d+%/,
      }),
    ).toBeVisible();
    // The chart's "most unstable" is the first row of the table of unstable inputs.
    const top = /most unstable: input (\d+) at (\d+)%/.exec((await flip.getAttribute('aria-label'))!)!;
    const unstable = explore.getByRole('table', { name: 'Most unstable inputs' });
    await expect(unstable.getByRole('row')).toHaveCount(11); // header + 10
    await expect(unstable.getByRole('row').nth(1).getByRole('cell').nth(0)).toHaveText(top[1]!);
    await expect(unstable.getByRole('row').nth(1).getByRole('cell').nth(4)).toHaveText(`${top[2]}%`);
    await app.screenshotAll('promptlab-explore', flip);

    // ---- the history: both runs found by the file's name and the model's name; nothing for nonsense ----
    await page.getByRole('tab', { name: 'History' }).click();
    const history = page.getByRole('region', { name: 'Prompt run history' });
    await history.getByRole('searchbox', { name: 'Search prompt runs' }).fill('reviews');
    const list = history.getByRole('table', { name: 'Prompt runs' });
    await expect(list.getByRole('row')).toHaveCount(3); // header + the run + the exploration
    await history.getByRole('searchbox', { name: 'Search prompt runs' }).fill('zebra crossing');
    await expect(history).toContainText('No prompt run matches “zebra crossing”.');
    await history.getByRole('searchbox', { name: 'Search prompt runs' }).fill('Sentiment');
    await expect(list.getByRole('row')).toHaveCount(3);
    await app.screenshotAll('promptlab-history', list);
    await list
      .getByRole('row')
      .filter({ hasText: 'classify' })
      .getByRole('button', { name: /^Open run/ })
      .click();
    await expect(page.getByRole('tab', { name: 'Run over a file' })).toHaveAttribute('aria-selected', 'true');
    await expect(pager).toContainText('120 rows');

    // ---- a second run over the first 30 rows, compared with the first ----
    await run.getByRole('spinbutton', { name: 'Row limit' }).fill('30');
    await run.getByRole('button', { name: 'Run over the file' }).click();
    await expect(pager).toContainText(/Page \d of 1 · 30 rows/, { timeout: 60_000 });
    await page.getByRole('tab', { name: 'History' }).click();
    await history.getByRole('searchbox', { name: 'Search prompt runs' }).fill('');
    const runs = list.getByRole('row').filter({ hasText: 'classify' });
    await expect(runs).toHaveCount(2);
    await runs.nth(1).getByRole('checkbox').check(); // the first run (120 rows): A
    await runs.nth(0).getByRole('checkbox').check(); // the second (30 rows): B
    await history.getByRole('button', { name: 'Compare the two picked' }).click();
    const comparison = history.getByRole('region', { name: 'Comparison' });
    // The same model on the same inputs: every shared row agrees.
    await expect(comparison).toContainText('Agreement 100.0% (30 of 30 rows) · only in A: 90, only in B: 0');
    await expect(comparison).toContainText('The two runs give the same answer on every row they share.');
    await app.screenshotAll('promptlab-compare', comparison);

    // ---- the studio's History page finds the prompt runs too, and Open brings the exploration back here ----
    await page.getByRole('navigation', { name: 'Main' }).getByRole('button', { name: 'History' }).click();
    await page.getByRole('searchbox', { name: 'Search runs' }).fill('reviews');
    const all = page.getByRole('table', { name: 'Runs' });
    await expect(all.getByRole('row').filter({ hasText: 'Prompt Lab' })).toHaveCount(3); // 2 runs + the exploration
    await app.screenshot('history-prompt-runs-1280-light');
    const exploration = all.getByRole('row').filter({ hasText: /explor/i });
    await expect(exploration).toHaveCount(1);
    await exploration.getByRole('button', { name: /^Open run \d+$/ }).click();
    await expect(page.getByRole('tab', { name: 'Explorer' })).toHaveAttribute('aria-selected', 'true');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('Prompt Lab: a CSV without the named column is refused in words', async ({ studioPage: page, server }) => {
  const app = new StudioApp(page);
  const models = await installTinyModels(server.dataDir);
  const dir = await mkdtemp(join(tmpdir(), 'fstudio-lab-'));
  try {
    const csvPath = join(dir, 'q.csv');
    await writeFile(csvPath, 'text,label\nhello,Positive\n');
    await openLab(page);
    await page.getByRole('combobox', { name: 'Language model' }).selectOption(models.text);
    await page.getByRole('tab', { name: 'Run over a file' }).click();
    await page.getByRole('textbox', { name: 'Inputs file path' }).fill(csvPath);
    await page.getByRole('textbox', { name: 'Input column' }).fill('question');
    await page.getByRole('button', { name: 'Run over the file' }).click();
    await expect(app.errors.or(page.getByRole('alert'))).toContainText(
      'No column "question" in q.csv: its columns are text, label.',
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('Prompt Lab: Escape cancels a run and keeps its rows; Try generates', async ({ studioPage: page, server }) => {
  test.setTimeout(180_000);
  const models = await installTinyModels(server.dataDir);
  const dir = await mkdtemp(join(tmpdir(), 'fstudio-lab-'));
  try {
    const txtPath = join(dir, 'many.txt');
    await writeFile(txtPath, Array.from({ length: 5000 }, (_, i) => `Review number ${i + 1} was fine.`).join('\n'));
    await openLab(page);
    await page.getByRole('combobox', { name: 'Language model' }).selectOption(models.text);
    await page.getByRole('tab', { name: 'Run over a file' }).click();
    const run = page.getByRole('region', { name: 'Run over a file' });
    await run.getByRole('textbox', { name: 'Inputs file path' }).fill(txtPath);
    await run.getByRole('button', { name: 'Run over the file' }).click();
    await expect(run.getByRole('progressbar', { name: 'Run progress' })).toBeVisible({ timeout: 60_000 });
    await expect(run.getByRole('navigation', { name: 'Result pages' })).toContainText(/[1-9]\d* rows/);
    await page.keyboard.press('Escape');
    const summary = run.getByLabel('Run summary');
    await expect(summary).toContainText('cancelled', { timeout: 60_000 });
    const kept = Number(/(\d[\d,]*) rows from many\.txt/.exec((await summary.textContent())!)![1]!.replaceAll(',', ''));
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(5000);
    await expect(run.getByRole('navigation', { name: 'Result pages' })).toContainText(
      `${kept.toLocaleString('en-US')} rows`,
    );

    // Generation: the answer and how it stopped (the text streams as it comes; too fast to see here).
    await page.getByRole('radio', { name: 'Generate' }).check();
    await page.getByRole('tab', { name: 'Try' }).click();
    await page.getByRole('textbox', { name: 'Try input' }).fill('Capital of France?');
    await page.getByRole('button', { name: 'Try', exact: true }).click();
    const result = page.getByLabel('Try result');
    await expect(result).toContainText(/Answer:/, { timeout: 60_000 });
    await expect(result).toContainText(
      /\d+ tokens · stopped by (a stop sequence|the end-of-text token|the token limit)/,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
