#!/usr/bin/python3
"""The PyTorch side of `npm run bench -- text` (bench/text.ts spawns it, with Debian's /usr/bin/python3 and its
python3-torch): the same work as the studio's, on the same model files, fp32 on the CPU, torch.set_num_threads
equal to the studio's threads.

  /usr/bin/python3 bench/_text_torch.py SPEC.json

SPEC (written by bench/text.ts) names one case:
  score     label scoring as TextLm.score does it (engine/text/lm.ts): the prompts in the studio's batches (right
            padding), each label's first token's log-prob from the prompt's last logits, the rest of a
            multi-token label in a second pass over the prompts' key/value caches (one row per prompt and label)
  generate  greedy generation with the key/value cache: the prompt in one pass, then one token at a time,
            stopping at the end-of-text token or after `new_tokens`
  classify  zero-shot CLIP classification of image files in the classify page's batches of 16: decode (PIL),
            CLIP's normalisation, the ViT-B/32 vision tower and projection (tests/fixtures/vqclip/vqclip_torch.py's
            vision_features, loading the studio's model.safetensors: the same weights), L2-normalised, cosines
            with the label weights (the studio's text embeddings, given: not timed) times the logit scale, softmax
The GPT-2 is tests/fixtures/text/gpt2_torch.py (loading the folder's model.safetensors: the same weights as its
onnx/model.onnx). Each case runs once as a warm-up, then `reps` timed runs.

Prints one JSON line: {"ms": {set: [per run]}, "cpu_ms": {...}, "results": {...}, "max_rss_kb", "load_ms",
"threads", "torch"}.
"""
import importlib.util
import json
import pathlib
import resource
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.dont_write_bytecode = True  # no __pycache__ left in the fixtures folder
sys.path.insert(0, str(ROOT / 'tests' / 'fixtures' / 'text'))
from gpt2_torch import gpt2_from_folder, load_safetensors  # noqa: E402

CLIP_MEAN = torch.tensor((0.48145466, 0.4578275, 0.40821073)).reshape(3, 1, 1)
CLIP_STD = torch.tensor((0.26862954, 0.26130258, 0.27577711)).reshape(3, 1, 1)


def timed(fn, reps):
    """fn() once as a warm-up, then `reps` times: (wall ms per run, CPU ms per run, last result)."""
    result = fn()
    ms, cpu = [], []
    for _ in range(reps):
        t, c = time.perf_counter(), time.process_time()
        result = fn()
        ms.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    return ms, cpu, result


def ints(rows, width, fill):
    out = torch.full((len(rows), width), fill, dtype=torch.int64)
    for i, r in enumerate(rows):
        out[i, :len(r)] = torch.tensor(r, dtype=torch.int64)
    return out


def padded_pass(model, rows, pad, past=None, past_lengths=None, past_width=0):
    """One forward pass over right-padded rows after an optional cache (TextLm's #forward)."""
    width = max(len(r) for r in rows)
    mask = torch.zeros(len(rows), past_width + width, dtype=torch.int64)
    pos = torch.zeros(len(rows), width, dtype=torch.int64)
    for i, r in enumerate(rows):
        p = past_lengths[i] if past_lengths else 0
        mask[i, :p] = 1
        mask[i, past_width:past_width + len(r)] = 1
        pos[i] = p + torch.arange(width).clamp(max=len(r) - 1)
    return model.forward(ints(rows, width, pad), mask, pos, past)


def score(model, prompts, conts, batches, pad):
    """logprobs[i][j] of continuation j after prompt i."""
    out = []
    i = 0
    multi = [j for j, c in enumerate(conts) if len(c) > 1]
    for n in batches:
        rows = prompts[i:i + n]
        i += n
        lens = torch.tensor([len(r) for r in rows])
        logits, present = padded_pass(model, rows, pad)
        last = logits[torch.arange(n), lens - 1].log_softmax(-1)  # [n, V]
        first = torch.tensor([c[0] for c in conts])
        res = last[:, first].double()  # [n, J]
        if multi:
            pairs = [(r, j) for r in range(n) for j in multi]
            pick = torch.tensor([r for r, _ in pairs])
            past = [(k[pick], v[pick]) for k, v in present]
            logits2, _ = padded_pass(model, [conts[j][:-1] for _, j in pairs], pad, past,
                                     [len(rows[r]) for r, _ in pairs], lens.max().item())
            lp = logits2.log_softmax(-1)
            for k, (r, j) in enumerate(pairs):
                c = conts[j]
                res[r, j] += sum(lp[k, t - 1, c[t]].item() for t in range(1, len(c)))
        out.extend(res.tolist())
    return out


def generate(model, prompt, new_tokens, eos):
    """Greedy: the prompt in one pass, then one token at a time over the cache."""
    made = []
    n = len(prompt)
    logits, past = model.forward(torch.tensor([prompt]), torch.ones(1, n, dtype=torch.int64), torch.arange(n)[None])
    while len(made) < new_tokens:
        token = int(logits[0, -1].argmax())
        if token == eos:
            break
        made.append(token)
        if len(made) >= new_tokens:
            break
        P = n + len(made) - 1
        logits, past = model.forward(torch.tensor([[token]]), torch.ones(1, P + 1, dtype=torch.int64),
                                     torch.tensor([[P]]), past)
    return made


def clip_pixels(path, size):
    """CLIP's preprocessing: shortest side to `size` (bicubic), centre crop, [0, 1], mean/std."""
    from PIL import Image
    img = Image.open(path).convert('RGB')
    w, h = img.size
    if min(w, h) != size:
        s = size / min(w, h)
        img = img.resize((max(size, round(w * s)), max(size, round(h * s))), Image.BICUBIC)
        w, h = img.size
    left, top = (w - size) // 2, (h - size) // 2
    img = img.crop((left, top, left + size, top + size))
    x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)
    return (x - CLIP_MEAN) / CLIP_STD


def classify(vision, p, images, weights, scale, batch):
    probs = []
    for i in range(0, len(images), batch):
        pixels = torch.stack([clip_pixels(f, 224) for f in images[i:i + batch]])
        emb = F.normalize(vision(p, pixels), dim=-1)
        probs.extend((scale * emb @ weights.T).softmax(-1).tolist())
    return probs


def load_vision():
    path = ROOT / 'tests' / 'fixtures' / 'vqclip' / 'vqclip_torch.py'
    spec = importlib.util.spec_from_file_location('vqclip_torch', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return lambda p, pixels: mod.vision_features(p, pixels, mod.VIT_B32)


def main():
    spec = json.loads(pathlib.Path(sys.argv[1]).read_text())
    torch.set_num_threads(spec['threads'])
    reps = spec['reps']
    report = {'ms': {}, 'cpu_ms': {}, 'results': {}}
    t = time.perf_counter()
    with torch.inference_mode():
        if spec['case'] in ('score', 'generate'):
            model = gpt2_from_folder(spec['gpt2_dir'])
        else:
            p = load_safetensors(pathlib.Path(spec['clip_dir']) / 'model.safetensors')
            vision = load_vision()
        report['load_ms'] = (time.perf_counter() - t) * 1000
        if spec['case'] == 'score':
            s = spec['score']
            for name, conts in s['label_sets'].items():
                ms, cpu, res = timed(lambda: score(model, s['prompts'], conts, s['batches'], s['pad']), reps)
                report['ms'][name], report['cpu_ms'][name] = ms, cpu
                report['results'][name] = res
        elif spec['case'] == 'generate':
            g = spec['generate']
            ms, cpu, res = timed(lambda: generate(model, g['prompt'], g['new_tokens'], g['eos']), reps)
            report['ms']['generate'], report['cpu_ms']['generate'] = ms, cpu
            report['results']['generate'] = res
        else:
            c = spec['classify']
            weights = torch.tensor(c['weights'], dtype=torch.float32)
            ms, cpu, res = timed(lambda: classify(vision, p, c['images'], weights, c['scale'], c['batch']), reps)
            report['ms']['classify'], report['cpu_ms']['classify'] = ms, cpu
            report['results']['classify'] = res
    report['max_rss_kb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    report['threads'] = torch.get_num_threads()
    report['torch'] = torch.__version__
    print(json.dumps(report))


if __name__ == '__main__':
    main()
