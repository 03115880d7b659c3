// One file into the gallery: hashed (WebCrypto, off the main thread), refused early when its bytes are
// already in the gallery, decoded in an import worker (checks, thumbnail, metadata), written to the
// content-addressed folders, then its rows. Crash safety: files first (temp + rename), rows last, so a
// kill leaves at worst an orphan file for the open-time sweep.
import type { GalleryItem } from '../../shared/api.js';
import { appVersion } from '../base/app-version.js';
import type { StudioContext } from './context.js';
import { sha256Async } from './import-decode.js';
import { cardOf } from './gallery-rows.js';

/** The last path segment of whatever name a transport passed (a browser gives a bare name, the CLI a path). */
export const baseName = (name: string) => name.split(/[\\/]/).filter(Boolean).at(-1) ?? name;

export async function importOne(
  ctx: StudioContext,
  name: string,
  data: Uint8Array,
): Promise<{ item: GalleryItem; duplicate: boolean }> {
  const { history, files } = ctx;
  ctx.live(); // the studio may have been closed while earlier files of the batch were imported
  const fileName = baseName(name);
  const sha256 = await sha256Async(data);
  const dup = history.liveImageIdBySha(sha256);
  if (dup !== null) {
    // Its file went missing (see openReport.missingFiles): these are the same bytes, put them back.
    const a = history.getAsset(sha256);
    if (a && files.abs(a.path) && !(await files.has(a.path))) await files.write(a.path, data);
    return { item: cardOf(history, dup), duplicate: true };
  }
  const img = await ctx.decoder.decode(data, fileName);
  const { metadata } = img;
  const assetRel = files.assetRel(sha256, img.ext);
  const thumbRel = files.thumbRel(sha256);
  if (!(await files.has(assetRel))) await files.write(assetRel, data);
  await files.write(thumbRel, img.thumb);
  const now = Date.now();
  return history.transaction(() => {
    const again = history.liveImageIdBySha(sha256);
    if (again !== null) return { item: cardOf(history, again), duplicate: true };
    history.upsertAsset({
      sha256,
      path: assetRel,
      mime: img.mime,
      bytes: data.byteLength,
      width: img.width,
      height: img.height,
      thumbPath: thumbRel,
    });
    const firstLine = (metadata.prompt ?? '').split('\n')[0]!.trim();
    const { raw: _raw, ...parsed } = metadata;
    const runId = history.insertRun({
      kind: 'import',
      title: (firstLine || fileName).slice(0, 200),
      spec: { fileName, metadata: parsed },
      provenance: {
        appVersion: appVersion(),
        node: process.versions.node,
        importedFrom: fileName,
        source: metadata.source,
      },
      createdAt: now,
      startedAt: now,
      finishedAt: now,
    });
    const id = history.insertImage(runId, { sha256, fileName, metadata, createdAt: now });
    return { item: cardOf(history, id), duplicate: false };
  });
}
