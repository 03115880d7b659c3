// The Models page's phrases: sizes said as approximate when they are, times left, and which
// headline a pull gets (a stall outranks downloading; files waiting for a slot read as queued).
import { describe, expect, it } from 'vitest';
import type { ModelProgress } from '../../../shared/models.js';
import {
  etaWords,
  fileLine,
  modelSizeWords,
  pullHeadline,
  pullPhase,
  sourcesWords,
  type FileProgress,
} from './words.js';

function file(state: FileProgress['state'], extra: Partial<FileProgress> = {}): FileProgress {
  return {
    name: 'f.bin',
    state,
    bytes: 0,
    total: null,
    speed: 0,
    etaSeconds: null,
    url: null,
    mirror: 1,
    mirrors: 2,
    attempt: 1,
    maxAttempts: 5,
    message: null,
    ...extra,
  };
}

function pull(state: ModelProgress['state'], files: FileProgress[], extra: Partial<ModelProgress> = {}): ModelProgress {
  return {
    modelId: 'm',
    jobId: 'j',
    state,
    files,
    bytes: 0,
    total: null,
    speed: 0,
    etaSeconds: null,
    stalled: false,
    message: null,
    ...extra,
  };
}

describe('words', () => {
  it('says sizes as approximate when the catalog does, and counts files of unknown size', () => {
    expect(modelSizeWords({ expectedBytes: 605_000_000, expectedApproximate: true, expectedUnknownFiles: 2 })).toBe(
      'about 605 MB + 2 small files',
    );
    expect(modelSizeWords({ expectedBytes: 2048, expectedApproximate: false, expectedUnknownFiles: 0 })).toBe('2.0 KB');
    expect(modelSizeWords({ expectedBytes: null, expectedApproximate: false, expectedUnknownFiles: 3 })).toBe(
      'size unknown',
    );
  });

  it('rounds the time left to what a person reads', () => {
    expect(etaWords(null)).toBeNull();
    expect(etaWords(0.2)).toBe('about 1 s left');
    expect(etaWords(42)).toBe('about 42 s left');
    expect(etaWords(185)).toBe('about 3 min left');
    expect(etaWords(3900)).toBe('about 1 h 5 min left');
  });

  it('gives a stall and a retry their own headline', () => {
    expect(pullPhase(pull('running', [file('downloading'), file('stalled')], { stalled: true }))).toBe('stalled');
    const retrying = pull('running', [file('retrying', { message: 'HTTP 503 — retrying (attempt 2/5)' })]);
    expect(pullPhase(retrying)).toBe('retrying');
    expect(pullHeadline(retrying)).toBe('Retrying: f.bin: HTTP 503 — retrying (attempt 2/5)');
    expect(pullPhase(pull('running', [file('done'), file('queued')]))).toBe('waiting');
    expect(pullPhase(pull('running', [file('downloading'), file('queued')]))).toBe('downloading');
  });

  it('keeps the failure message of a failed pull, every mirror included', () => {
    const message = 'Could not download X.\nf.bin: every mirror failed:\n  1. http://a/f.bin — HTTP 404 Not Found';
    expect(pullHeadline(pull('failed', [file('failed')], { message }))).toBe(message);
  });

  it('names the server a file comes from, and says when it is a third party', () => {
    const sources = [
      {
        host: 'huggingface.co',
        name: 'Hugging Face',
        thirdParty: false,
        about: '',
        enabled: true,
        unusedBecause: null,
      },
      { host: 'hf-mirror.com', name: 'hf-mirror.com', thirdParty: true, about: '', enabled: true, unusedBecause: null },
    ];
    const on = (url: string) => file('connecting', { url });
    expect(fileLine(on('https://huggingface.co/x/f.bin'), sources)).toBe(
      'Connecting · from huggingface.co (Hugging Face)',
    );
    expect(fileLine(on('https://hf-mirror.com/x/f.bin'), sources)).toBe(
      'Connecting · from hf-mirror.com (third-party mirror)',
    );
    expect(fileLine(on('http://127.0.0.1:8000/m/f.bin'), sources)).toBe('Connecting · from 127.0.0.1');
    expect(fileLine(file('done', { url: 'https://hf-mirror.com/x/f.bin' }), sources)).toBe('Done');
    expect(sourcesWords([sources[0]!, { ...sources[1]!, enabled: false, unusedBecause: 'third-party-off' }])).toEqual({
      tried: 'huggingface.co (Hugging Face)',
      off: 'hf-mirror.com (third-party mirrors are turned off in Settings)',
    });
  });
});
