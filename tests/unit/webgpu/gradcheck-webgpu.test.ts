import { inThreadDevice } from '../../../src/main/engine/runtime/worker-core.js';
import { describe, expect, it } from 'vitest';
import { formatGradcheckReport, runGradcheck } from '../../../src/main/engine/graph/gradcheck.js';
import { webgpuSkipReason } from './webgpu-env.js';

describe.skipIf(webgpuSkipReason !== null)('gradcheck on WebGPU', () => {
  it('every op passes against finite differences on the WebGPU provider', async () => {
    const r = await runGradcheck(inThreadDevice(), { provider: 'webgpu' });
    expect(r.provider).toBe('webgpu');
    expect(r.passed, formatGradcheckReport(r)).toBe(true);
  }, 180_000);
});

if (webgpuSkipReason) describe('gradcheck on WebGPU', () => it.skip(webgpuSkipReason ?? '', () => {}));
