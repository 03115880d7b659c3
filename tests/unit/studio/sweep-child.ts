// Child process for studio.test.ts: runs a sweep of a data folder that takes about a second
// (holding locks/sweep.lock all the while), as an open of a large folder would.
//   node --import tsx sweep-child.ts <dataDir> <holdMs>
// Prints "sweeping" once it holds the lock; writes <dataDir>/swept just before it lets go.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { registerOpen } from '../../../src/main/studio/lock.js';

const [dataDir, holdMs = '1000'] = process.argv.slice(2);
if (!dataDir) throw new Error('usage: sweep-child.ts <dataDir> <holdMs>');
const reg = await registerOpen(dataDir);
const result = await reg.sweep(
  async () => {
    process.stdout.write('sweeping\n');
    await new Promise((r) => setTimeout(r, Number(holdMs)));
    writeFileSync(join(dataDir, 'swept'), 'done');
    return 'done';
  },
  (why) => `skipped: ${why}`,
);
reg.release();
process.stdout.write(`${result}\n`);
