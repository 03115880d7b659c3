// Gallery calls: queries and details, favourites, notes and tags, delete with undo, import, export.
//
// Crash-safety order of operations (so that a kill -9 at any point leaves a consistent
// folder once the open-time sweep has run):
//   import: write asset + thumbnail (temp + rename), then insert rows   -> orphans go to trash/orphans-*
//   delete: mark rows trashed, then move files to trash/<token>/        -> files found either place
//   undo:   move files back, then unmark rows                           -> idem
//   purge:  delete rows, then delete files                              -> orphans go to trash/orphans-*
import { type galleryCalls, StudioError, type Handlers, type ImportReport } from '../../../shared/api.js';
import { newTrashToken, TRASH_TOKEN_RE } from '../assets.js';
import type { StudioContext } from '../context.js';
import { exportItem } from '../gallery-export.js';
import { baseName, importBatch, importRate } from '../gallery-import.js';
import { card, cardOf, liveImage, metadataOf, notFound } from '../gallery-rows.js';
import type { AssetRow } from '../history.js';

export function galleryHandlers(ctx: StudioContext): Handlers<typeof galleryCalls> {
  const { history, files, mutex, emit } = ctx;

  async function moveAssetFiles(a: AssetRow, token: string, direction: 'toTrash' | 'fromTrash'): Promise<void> {
    for (const rel of [a.path, a.thumbPath]) {
      if (!rel) continue;
      const trashRel = files.trashRel(token, rel);
      if (direction === 'toTrash') await files.move(rel, trashRel);
      else if (await files.has(rel)) await files.remove(trashRel);
      else await files.move(trashRel, rel);
    }
  }

  const changed = (id: number) => emit('galleryChanged', { reason: 'update', ids: [id] });

  return {
    async galleryQuery(q) {
      ctx.live();
      const key = (c: string | undefined) => (c === undefined ? undefined : Number(c));
      const page = history.query({ ...q, after: key(q.after), before: key(q.before) });
      return {
        total: page.total,
        totalExact: page.totalExact,
        offset: page.offset,
        items: page.rows.map(card),
        next: page.rows.length > 0 ? String(page.rows.at(-1)!.sortKey) : null,
        prev: page.rows.length > 0 ? String(page.rows[0]!.sortKey) : null,
      };
    },

    async galleryCount(filter) {
      ctx.live();
      // A text search's count reads every match: the history worker does it, off this thread.
      return { total: filter.text ? await ctx.reader.count(filter) : history.countExact(filter) };
    },

    async getItem({ id }) {
      ctx.live();
      const row = liveImage(history, id);
      return {
        item: cardOf(history, id),
        mime: row.mime,
        bytes: row.bytes,
        fileName: row.fileName,
        note: row.note,
        tags: history.tagsOf(id),
        spec: row.spec,
        status: row.status,
        provenance: row.provenance,
        metadata: metadataOf(row),
      };
    },

    async setFavourite({ id, favourite }) {
      ctx.live();
      if (!history.setFavourite(id, favourite)) throw notFound(id);
      changed(id);
      return cardOf(history, id);
    },

    async setNote({ id, note }) {
      ctx.live();
      if (!history.setNote(id, note)) throw notFound(id);
      changed(id);
      return {};
    },

    async setTags({ id, tags }) {
      ctx.live();
      const clean = [...new Set(tags.map((t) => t.trim()).filter(Boolean))];
      if (!history.setTags(id, clean)) throw notFound(id);
      changed(id);
      return {};
    },

    deleteItems({ ids }) {
      ctx.live();
      return mutex.run(async () => {
        const token = newTrashToken();
        const { ids: done, orphaned } = history.trash(ids, token, Date.now());
        if (done.length === 0)
          throw new StudioError('NotFound', `None of the ${ids.length} item(s) is in the gallery (already deleted?).`);
        for (const a of orphaned) await moveAssetFiles(a, token, 'toTrash');
        emit('galleryChanged', { reason: 'delete', ids: done });
        return { deleted: done.length, undoToken: token };
      });
    },

    undoDelete({ undoToken }) {
      ctx.live();
      return mutex.run(async () => {
        const gone = () =>
          new StudioError(
            'NotFound',
            'Nothing to undo for this token: it was already undone, or the trash was emptied.',
          );
        if (!TRASH_TOKEN_RE.test(undoToken)) throw gone();
        const assets = history.assetsOfToken(undoToken);
        if (assets.length === 0) throw gone();
        for (const a of assets) await moveAssetFiles(a, undoToken, 'fromTrash');
        const { ids } = history.untrash(undoToken);
        await files.removeTrash(undoToken);
        emit('galleryChanged', { reason: 'undo', ids });
        return { restored: ids.length };
      });
    },

    async importImages({ files: batch }) {
      ctx.live();
      const out: ImportReport = { imported: [], duplicates: [], failed: [] };
      let done = 0;
      const start = Date.now();
      await importBatch(ctx, batch, (r, f) => {
        const name = baseName(f.name);
        if (!r.ok) out.failed.push({ name, error: r.error });
        else if (r.duplicate) out.duplicates.push({ name, item: r.item });
        else out.imported.push(r.item);
        emit('importProgress', { done: ++done, total: batch.length, name, ...importRate(start, done, batch.length) });
      });
      if (out.imported.length > 0) emit('galleryChanged', { reason: 'import', ids: out.imported.map((i) => i.id) });
      return out;
    },

    async exportItem({ id, noteAndTags }) {
      ctx.live();
      return exportItem(ctx, id, { noteAndTags });
    },
  };
}
