#!/usr/bin/env python3
"""The PyTorch side of the device run (tools/device/run.sh): the same VQGAN+CLIP step as the studio's, from
tests/fixtures/vqclip/vqclip_torch.py (our own minimal taming decoder + a ViT-B/32 vision tower, random
weights, fp32, Crowson's cutouts, spherical-distance loss, Adam on z), on CUDA when there is one, else on the
CPU; eager, then with torch.compile (decoder and vision tower compiled, cutouts eager) where torch has it and
it works. The fixture module is imported as it is; only its normalize(), which makes CPU tensors, is replaced
here with device-aware ones, so its outputs for the tests do not change.

  python3 tools/device/torch_step.py --sizes 256,512 --cuts 32 --steps 5 [--device cuda|cpu] [--no-compile]
      [--tf32] [--fixtures DIR] [--json FILE]

Prints progress on stderr and writes one JSON object (to --json, else stdout): per size the eager and the
compiled ms/step (best of the measured steps; the first steps are warm-ups), peak device memory, and the
chip's measured fp32 matmul rate. fp32 means fp32: TF32 is off for matmuls and cuDNN convolutions unless
--tf32 is given.
"""
import argparse
import importlib.util
import json
import math
import os
import pathlib
import sys
import time
import traceback

HERE = pathlib.Path(__file__).resolve().parent


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def load_fixture(fixtures):
    path = pathlib.Path(fixtures) / 'vqclip' / 'vqclip_torch.py'
    spec = importlib.util.spec_from_file_location('vqclip_torch', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# Datasheet fp32 (non-tensor-core) peaks in TFLOP/s, matched on torch.cuda.get_device_name().
FP32_PEAK = [('H200', 67.0, 'NVIDIA H200 SXM datasheet: 67 TFLOP/s FP32 (60 for H200 NVL)'),
             ('H100 80GB HBM3', 67.0, 'NVIDIA H100 SXM datasheet: 67 TFLOP/s FP32'),
             ('A100', 19.5, 'NVIDIA A100 datasheet: 19.5 TFLOP/s FP32')]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--sizes', default='64')
    ap.add_argument('--cuts', type=int, default=4)
    ap.add_argument('--steps', type=int, default=5, help='measured steps per variant (after the warm-ups)')
    ap.add_argument('--device', default='auto')
    ap.add_argument('--no-compile', action='store_true')
    ap.add_argument('--compile-timeout', type=float, default=240, help='give up compiling after this many s')
    ap.add_argument('--tf32', action='store_true')
    ap.add_argument('--threads', type=int, default=0)
    ap.add_argument('--fixtures', default=str(HERE.parent.parent / 'tests' / 'fixtures'))
    ap.add_argument('--json')
    a = ap.parse_args()
    report = {'rows': [], 'torch': None, 'device': None}

    def save():
        text = json.dumps(report, indent=1)
        if a.json:
            pathlib.Path(a.json).write_text(text)
        return text

    try:
        import torch
    except Exception as e:  # noqa: BLE001
        report['error'] = f'torch could not be imported: {e}'
        print(save()) if not a.json else save()
        return 1
    import torch.nn as nn
    import torch.nn.functional as F

    report['torch'] = torch.__version__
    report['python'] = sys.version.split()[0]
    dev = a.device if a.device != 'auto' else ('cuda' if torch.cuda.is_available() else 'cpu')
    device = torch.device(dev)
    if a.threads:
        torch.set_num_threads(a.threads)
    if dev == 'cuda':
        torch.backends.cuda.matmul.allow_tf32 = a.tf32
        torch.backends.cudnn.allow_tf32 = a.tf32
        torch.backends.cudnn.benchmark = True
        props = torch.cuda.get_device_properties(0)
        name = torch.cuda.get_device_name(0)
        report['device'] = {'type': 'cuda', 'name': name, 'memory_gb': props.total_memory / 1e9,
                            'sm_count': props.multi_processor_count, 'capability': f'{props.major}.{props.minor}',
                            'cuda': torch.version.cuda, 'cudnn': torch.backends.cudnn.version()}
        match = next((p for p in FP32_PEAK if p[0] in name), None)
        report['fp32_peak_tflops'] = ({'value': match[1], 'source': match[2]} if match else
                                      {'value': None, 'reason': f'no datasheet figure here for {name}'})
    else:
        report['device'] = {'type': 'cpu', 'threads': torch.get_num_threads()}
        report['fp32_peak_tflops'] = {'value': None, 'reason': 'CPU run: no datasheet peak recorded'}
    report['precision'] = {'dtype': 'float32', 'tf32': bool(a.tf32 and dev == 'cuda')}
    log(f'torch {torch.__version__} on {report["device"]}')

    def sync():
        if dev == 'cuda':
            torch.cuda.synchronize()

    # The chip's fp32 matmul rate through torch (4096³, best of 10), beside the datasheet peak.
    try:
        n = 4096 if dev == 'cuda' else 1024
        x = torch.randn(n, n, device=device)
        y = torch.randn(n, n, device=device)
        x @ y
        sync()
        best = math.inf
        for _ in range(10 if dev == 'cuda' else 3):
            t = time.perf_counter()
            x @ y
            sync()
            best = min(best, time.perf_counter() - t)
        report['torch_matmul_tflops'] = {'n': n, 'value': 2 * n ** 3 / best / 1e12}
        del x, y
    except Exception as e:  # noqa: BLE001
        report['torch_matmul_tflops'] = {'value': None, 'reason': str(e)}

    vq = load_fixture(a.fixtures)
    mean = torch.tensor(vq.CLIP_MEAN, device=device).reshape(1, 3, 1, 1)
    std = torch.tensor(vq.CLIP_STD, device=device).reshape(1, 3, 1, 1)
    # The fixture's normalize() makes CPU tensors; on a GPU they must live there.
    vq.normalize = lambda t: (t - mean.to(t.dtype)) / std.to(t.dtype)

    have_compile = hasattr(torch, 'compile')
    if a.no_compile:
        report['compile'] = {'attempted': False, 'reason': '--no-compile'}
    elif not have_compile:
        report['compile'] = {'attempted': False, 'reason': f'torch {torch.__version__} has no torch.compile (2.0+)'}
    else:
        report['compile'] = {'attempted': True}

    def run_size(size, row, compiled):
        """One size, eager or compiled: fresh random models (seeded) so each variant starts alike."""
        try:
            torch.manual_seed(0)
            g = torch.Generator().manual_seed(1)
            dec = vq.vqfx.Decoder(**vq.F16).float().eval().requires_grad_(False).to(device)
            pqc = nn.Conv2d(256, 256, 1).float().requires_grad_(False).to(device)
            codebook = (torch.randn(16384, 256, generator=g) * 0.5).to(device)
            p = {k: v.to(device) for k, v in vq.random_vit(vq.VIT_B32, 512, g).items()}
            hw = size // 16
            idx = torch.randint(16384, (hw * hw,), generator=g).to(device)
            z0 = codebook[idx].reshape(1, hw, hw, 256).permute(0, 3, 1, 2).clone()
            targets = F.normalize(torch.randn(2, 512, generator=g), dim=1).to(device)
            signs = torch.tensor([1.0, -1.0], device=device)
            stops = torch.full((2,), -math.inf, device=device)
            member = torch.eye(2, device=device)
            weights = torch.tensor([1.0, 0.5], device=device)
            z_min = codebook.min(0).values[None, :, None, None]
            z_max = codebook.max(0).values[None, :, None, None]
            S = vq.VIT_B32['image_size']
        except Exception as e:  # noqa: BLE001
            row['compiled' if compiled else 'eager'] = {'ms_per_step': None, 'error': f'setup failed: {e}'}
            log(traceback.format_exc())
            return

        def params_for(i):
            gen = torch.Generator().manual_seed(100 + i)
            min_size = min(size, S)
            out = []
            for _ in range(a.cuts):
                side = int(torch.rand([], generator=gen) ** 1.0 * (size - min_size) + min_size)
                out.append((side, int(torch.randint(0, size - side + 1, (), generator=gen)),
                            int(torch.randint(0, size - side + 1, (), generator=gen))))
            return out

        def variant(decoder, warm, steps, budget=None):
            """ms per step over `steps` measured steps after `warm` warm-ups; z, m, v stay on the device."""
            step = vq.Step(decoder, pqc, codebook, p, vq.VIT_B32)
            z = z0.clone().requires_grad_(True)
            opt = torch.optim.Adam([z], lr=0.1)
            ms = []
            t_start = time.perf_counter()
            for i in range(warm + steps):
                params = params_for(i)
                sync()
                t0 = time.perf_counter()
                opt.zero_grad(set_to_none=True)
                losses, _, _, _ = step.losses(z, lambda img: vq.original_cutouts(img, S, params), targets, signs,
                                              stops, member, weights)
                losses.sum().backward()
                opt.step()
                with torch.no_grad():
                    z.copy_(z.maximum(z_min).minimum(z_max))
                sync()
                dt = (time.perf_counter() - t0) * 1000
                if i >= warm:
                    ms.append(dt)
                else:
                    log(f'  {size}² {"compiled" if compiled else "eager"} warm-up step {i}: {dt:.1f} ms')
                if budget and time.perf_counter() - t_start > budget:
                    raise TimeoutError(f'over {budget} s')
            return ms

        def summary(ms, **extra):
            s = sorted(ms)
            return {'ms_per_step': s[0] if s else None, 'median_ms': s[len(s) // 2] if s else None, 'steps_ms': ms,
                    **extra}

        if dev == 'cuda':
            torch.cuda.reset_peak_memory_stats()
        t = time.perf_counter()
        if not compiled:
            try:
                ms = variant(dec, 2, a.steps)
                mem = torch.cuda.max_memory_allocated() / 1e9 if dev == 'cuda' else None
                row['eager'] = summary(ms, peak_memory_gb=mem, wall_s=time.perf_counter() - t)
                log(f'{size}² {a.cuts} cuts eager: {row["eager"]["ms_per_step"]:.1f} ms/step')
            except Exception as e:  # noqa: BLE001
                row['eager'] = {'ms_per_step': None, 'error': f'{type(e).__name__}: {e}'}
                log(traceback.format_exc())
        else:
            orig = vq.vision_features
            try:
                cdec = torch.compile(dec)
                vq.vision_features = torch.compile(orig)
                ms = variant(cdec, 3, a.steps, budget=a.compile_timeout)
                mem = torch.cuda.max_memory_allocated() / 1e9 if dev == 'cuda' else None
                row['compiled'] = summary(ms, peak_memory_gb=mem, wall_s_with_compile=time.perf_counter() - t,
                                          what='torch.compile(decoder) and torch.compile(vision tower); cutouts eager')
                log(f'{size}² {a.cuts} cuts compiled: {row["compiled"]["ms_per_step"]:.1f} ms/step')
            except Exception as e:  # noqa: BLE001
                row['compiled'] = {'ms_per_step': None, 'error': f'{type(e).__name__}: {str(e)[:500]}'}
                log(traceback.format_exc()[-3000:])
            finally:
                vq.vision_features = orig
        del dec, pqc, codebook, p
        if dev == 'cuda':
            torch.cuda.empty_cache()

    # Eager at every size first, then compiled: a slow compile (or the phase's timeout) never costs an eager figure.
    for size in [int(s) for s in a.sizes.split(',')]:
        row = {'size': size, 'cuts': a.cuts}
        report['rows'].append(row)
        run_size(size, row, compiled=False)
        save()
    for row in report['rows']:
        if not report['compile'].get('attempted'):
            row['compiled'] = {'ms_per_step': None, 'error': report['compile']['reason']}
            continue
        run_size(row['size'], row, compiled=True)
        save()

    text = save()
    if not a.json:
        print(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
