// Child process for studio.test.ts: holds a data folder open (as the app or `fstudio serve`
// would) until its stdin closes, then closes the studio and exits.
//   node --import tsx hold-child.ts <dataDir>
import { openStudio } from '../../../src/main/studio/index.js';

const [dataDir] = process.argv.slice(2);
if (!dataDir) throw new Error('usage: hold-child.ts <dataDir>');
const studio = await openStudio({ dataDir });
process.stdout.write(`ready ${JSON.stringify((await studio.checked).sweep)}\n`);
process.stdin.resume();
process.stdin.on('end', () => {
  void studio.close().then(() => process.exit(0));
});
