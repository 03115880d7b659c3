// The `fstudio` CLI as one bundled entry for the device pack (tools/device/pack.sh): what bin/fstudio.js
// runs through tsx, here compiled ahead so the GPU machine needs neither npm nor tsx.
import { run } from '../../src/main/cli/main.js';

process.exitCode = await run(process.argv);
