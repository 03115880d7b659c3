// One line per op: the emitted gradient graph (run on ORT CPU) against central finite differences of
// the forward graph, over shapes that cover every broadcast form. float64 wherever ORT's CPU provider
// has double kernels; Erf, Asin, Conv, ConvTranspose and Resize have only float32 kernels there and are
// checked in float32 (linear ops with step 1, where central differences are exact up to rounding).
import { afterAll, describe, expect, it } from 'vitest';
import { Builder } from './builder.js';
import { grad } from './grad.js';
import { neededNodes } from './onnx-proto.js';
import { type GradCheckSpec, checkGradient, opsChecked, samplers, worstErrorReport } from './fdcheck.js';
import { NON_DIFFERENTIABLE, RULES } from './grad-rules.js';
import { type Tensor } from './ir.js';

type Build = (b: Builder, xs: Tensor[]) => Tensor | Tensor[];
const check = async (label: string, shapes: number[][], build: Build, opts: Partial<GradCheckSpec> = {}) => {
  await checkGradient({ label, shapes, build, ...opts });
};
const F32_LINEAR = { dtype: 'float32', h: 1, tol: 1e-3, jacobianMax: 400 } as const;
const pos = samplers.positive();

afterAll(() => console.log(`worst gradient error per op (max of directional and Jacobian):\n${worstErrorReport()}`));

// same shape, trailing vector, size-1 axes on either side, scalars, both sides broadcast, leading axes
const BROADCAST: number[][][] = [
  [
    [2, 3],
    [2, 3],
  ],
  [[2, 3], [3]],
  [
    [2, 3],
    [1, 3],
  ],
  [
    [2, 3],
    [2, 1],
  ],
  [[2, 3], []],
  [[], [2, 3]],
  [
    [4, 1, 3],
    [2, 1],
  ],
  [[1], [2, 3]],
  [
    [2, 1, 2, 3],
    [3, 1, 1],
  ],
];
const UNARY: number[][][] = [[[5]], [[2, 3]], [[2, 1, 3]], [[]]];

describe('elementwise binary ops, every broadcast form', () => {
  it.each(BROADCAST)('Add %j %j', (a, c) => check('Add', [a, c], (b, [x, y]) => b.add(x!, y!)));
  it.each(BROADCAST)('Sub %j %j', (a, c) => check('Sub', [a, c], (b, [x, y]) => b.sub(x!, y!)));
  it.each(BROADCAST)('Mul %j %j', (a, c) => check('Mul', [a, c], (b, [x, y]) => b.mul(x!, y!)));
  it.each(BROADCAST)('Div %j %j', (a, c) => check('Div', [a, c], (b, [x, y]) => b.div(x!, y!)));
  it.each(BROADCAST)('Max %j %j', (a, c) => check('Max', [a, c], (b, [x, y]) => b.max(x!, y!)));
  it.each(BROADCAST)('Min %j %j', (a, c) => check('Min', [a, c], (b, [x, y]) => b.min(x!, y!)));
  it.each(BROADCAST)('Pow tensor exponent %j %j', (a, c) =>
    check('Pow (tensor exponent)', [a, c], (b, [x, y]) => b.pow(x!, y!), { sample: [pos, samplers.uniform(-2, 2)] }),
  );
  it.each(BROADCAST)('Where %j %j', (a, c) =>
    check('Where', [a, c], (b, [x, y]) => {
      const shape = [2, 3];
      const cond = b.greater(b.constant([1, -1, 1, 1, -1, -1], 'float64', shape), 0);
      return b.where(cond, x!, y!);
    }),
  );
  it('Where with a broadcast condition', () =>
    check(
      'Where',
      [
        [2, 3],
        [2, 3],
      ],
      (b, [x, y]) => b.where(b.greater(b.constant([1, -1, 1], 'float64'), 0), x!, y!),
    ));
});

describe('Pow with a constant exponent', () => {
  it.each([2, 3, 0.5, -1.5, 1, 0])('x ** %d', (p) =>
    check('Pow', [[2, 3]], (b, [x]) => b.pow(x!, p), { sample: pos, wrt: [0] }),
  );
  it('negative base, integer exponent', () => check('Pow', [[2, 3]], (b, [x]) => b.pow(x!, 3)));
});

describe('elementwise unary ops', () => {
  it.each(UNARY)('Neg %j', (s) => check('Neg', [s], (b, [x]) => b.neg(x!)));
  it.each(UNARY)('Sqrt %j', (s) => check('Sqrt', [s], (b, [x]) => b.sqrt(x!), { sample: pos }));
  it.each(UNARY)('Exp %j', (s) => check('Exp', [s], (b, [x]) => b.exp(x!)));
  it.each(UNARY)('Log %j', (s) => check('Log', [s], (b, [x]) => b.log(x!), { sample: pos }));
  it.each(UNARY)('Reciprocal %j', (s) => check('Reciprocal', [s], (b, [x]) => b.reciprocal(x!)));
  it.each(UNARY)('Sigmoid %j', (s) => check('Sigmoid', [s], (b, [x]) => b.sigmoid(x!), { sample: samplers.normal() }));
  it.each(UNARY)('Tanh %j', (s) => check('Tanh', [s], (b, [x]) => b.tanh(x!), { sample: samplers.normal() }));
  it.each(UNARY)('Relu %j', (s) => check('Relu', [s], (b, [x]) => b.relu(x!)));
  it.each(UNARY)('Abs %j', (s) => check('Abs', [s], (b, [x]) => b.abs(x!)));
  it.each(UNARY)('Sign %j', (s) => check('Sign', [s], (b, [x]) => b.add(b.sign(x!), x!)));
  it.each(UNARY)('Identity %j', (s) => check('Identity', [s], (b, [x]) => b.identity(x!)));
  // float32 only on ORT CPU
  it.each(UNARY)('Erf %j', (s) =>
    check('Erf', [s], (b, [x]) => b.erf(x!), { dtype: 'float32', h: 1e-2, tol: 3e-3, sample: samplers.normal() }),
  );
  it.each(UNARY)('Asin %j', (s) =>
    check('Asin', [s], (b, [x]) => b.asin(x!), {
      dtype: 'float32',
      h: 1e-2,
      tol: 3e-3,
      sample: samplers.uniform(-0.8, 0.8),
    }),
  );
  it.each(UNARY)('Clip %j', (s) =>
    check('Clip', [s], (b, [x]) => b.clip(x!, -0.5, 0.5), { sample: samplers.uniform(-1, 1) }),
  );
  it('Clip with one bound', () => check('Clip', [[3, 4]], (b, [x]) => b.clip(x!, undefined, 0.2)));
  it('Clip with tensor bounds (gradient to the bounds)', () =>
    check('Clip', [[3, 4], [], []], (b, [x, lo, hi]) => b.clip(x!, lo!, hi!), {
      sample: [samplers.uniform(-1, 1), samplers.uniform(-0.6, -0.4), samplers.uniform(0.4, 0.6)],
    }));
  it('Cast float64 -> float32 -> float64', () =>
    check('Cast', [[2, 3]], (b, [x]) => b.cast(b.mul(b.cast(x!, 'float32'), 2), 'float64'), { h: 0.1, tol: 1e-4 }));
  it('Cast to int64 carries no gradient', () =>
    check('Cast', [[2, 3]], (b, [x]) => b.add(x!, b.cast(b.cast(b.mul(x!, 10), 'int64'), 'float64')), {
      sample: samplers.uniform(0.12, 0.18),
    }));
});

describe('MatMul and Gemm', () => {
  const MM: number[][][] = [
    [
      [2, 3],
      [3, 4],
    ],
    [[3], [3, 4]],
    [[2, 3], [3]],
    [[3], [3]],
    [
      [2, 2, 3],
      [3, 4],
    ],
    [
      [2, 3],
      [2, 3, 4],
    ],
    [
      [2, 1, 2, 3],
      [3, 3, 2],
    ],
    [
      [1, 2, 3],
      [2, 3, 4],
    ],
  ];
  it.each(MM)('MatMul %j %j', (a, c) => check('MatMul', [a, c], (b, [x, y]) => b.matmul(x!, y!)));
  const GEMM: [boolean, boolean, number[] | null][] = [
    [false, false, [4]],
    [true, false, [2, 4]],
    [false, true, [1, 4]],
    [true, true, [2, 1]],
    [false, false, []],
    [false, false, null],
  ];
  it.each(GEMM)('Gemm transA=%s transB=%s C=%j', (tA, tB, c) =>
    check('Gemm', [tA ? [3, 2] : [2, 3], tB ? [4, 3] : [3, 4], ...(c ? [c] : [])], (b, [x, y, z]) =>
      b.gemm(x!, y!, z ?? null, { transA: tA, transB: tB, alpha: 0.7, beta: 1.3 }),
    ),
  );
});

describe('Conv and ConvTranspose (float32)', () => {
  const CONV: [string, number[], number[], object][] = [
    ['3x3 pad 1', [2, 3, 5, 5], [4, 3, 3, 3], { pads: [1, 1, 1, 1] }],
    ['3x3 stride 2 pad 1, odd input', [1, 2, 7, 7], [3, 2, 3, 3], { pads: [1, 1, 1, 1], strides: [2, 2] }],
    [
      '3x3 stride 2 pad 1, even input (output_padding 1)',
      [1, 2, 6, 6],
      [3, 2, 3, 3],
      { pads: [1, 1, 1, 1], strides: [2, 2] },
    ],
    ['4x4 stride 2 pad 1', [1, 2, 8, 8], [2, 2, 4, 4], { pads: [1, 1, 1, 1], strides: [2, 2] }],
    ['dilation 2', [1, 2, 7, 6], [2, 2, 3, 2], { dilations: [2, 2], pads: [2, 1, 2, 1] }],
    ['groups 2', [2, 4, 5, 5], [6, 2, 3, 3], { group: 2, pads: [1, 1, 1, 1] }],
    ['depthwise, stride 2', [1, 3, 6, 6], [3, 1, 3, 3], { group: 3, strides: [2, 2] }],
    ['asymmetric pads, 1x1 and stride 3', [1, 2, 7, 5], [2, 2, 1, 2], { pads: [0, 1, 2, 0], strides: [3, 1] }],
    ['1-D', [2, 2, 9], [3, 2, 3], { pads: [1, 0], strides: [2] }],
    ['1-D stride 1', [2, 2, 9], [3, 2, 3], { pads: [2, 0] }],
    [
      'stride 1, groups 3, dilation 2, asymmetric pads',
      [1, 3, 7, 7],
      [6, 1, 3, 3],
      { group: 3, dilations: [2, 2], pads: [1, 2, 3, 0] },
    ],
    ['1x1 with pad 2 (pads beyond the kernel: ConvTranspose path)', [1, 2, 3, 3], [2, 2, 1, 1], { pads: [2, 2, 2, 2] }],
    ['patch embedding, stride = kernel (MatMul path)', [2, 3, 8, 6], [4, 3, 2, 3], { strides: [2, 3] }],
    [
      'patch embedding with leftover rows and columns (MatMul path, zero-padded)',
      [1, 2, 7, 8],
      [3, 2, 3, 3],
      { strides: [3, 3] },
    ],
  ];
  it.each(CONV)('Conv %s', (_n, xs, ws, o) =>
    check('Conv', [xs, ws, [ws[0]!]], (b, [x, w, bias]) => b.conv(x!, w!, bias!, o), F32_LINEAR),
  );
  it('stride-1 convs take the flipped-kernel Conv path, strided ones ConvTranspose', () => {
    const ops = (o: object) => {
      const b = new Builder();
      const x = b.input('x', [1, 2, 6, 6]);
      const [dx] = grad(b, b.sum(b.conv(x, b.input('w', [3, 2, 3, 3]), null, o)), [x]);
      return neededNodes(b.graph, [dx!]).map((n) => n.opType);
    };
    expect(ops({ pads: [1, 1, 1, 1] })).toContain('Conv');
    expect(ops({ pads: [1, 1, 1, 1] })).not.toContain('ConvTranspose');
    expect(ops({ pads: [1, 1, 1, 1], strides: [2, 2] })).toContain('ConvTranspose');
    const patch = ops({ strides: [3, 3] });
    expect(patch).toContain('MatMul');
    expect(patch).not.toContain('ConvTranspose');
  });
  const CONVT: [string, number[], number[], object][] = [
    ['3x3', [2, 3, 4, 4], [3, 2, 3, 3], {}],
    [
      'stride 2 pad 1 output_padding 1',
      [1, 2, 4, 4],
      [2, 3, 3, 3],
      { strides: [2, 2], pads: [1, 1, 1, 1], outputPadding: [1, 1] },
    ],
    ['4x4 stride 2 pad 1', [1, 2, 3, 3], [2, 2, 4, 4], { strides: [2, 2], pads: [1, 1, 1, 1] }],
    [
      'asymmetric pads, stride 3',
      [1, 2, 3, 4],
      [2, 2, 3, 2],
      { strides: [3, 2], pads: [0, 1, 2, 0], outputPadding: [2, 1] },
    ],
    ['groups 2, dilation 2', [1, 4, 3, 3], [4, 3, 2, 2], { group: 2, dilations: [2, 2], pads: [1, 0, 0, 1] }],
    ['1-D', [2, 2, 4], [2, 3, 3], { strides: [2], pads: [1, 1], outputPadding: [1] }],
  ];
  it.each(CONVT)('ConvTranspose %s', (_n, xs, ws, o) => {
    const cout = ws[1]! * ((o as { group?: number }).group ?? 1);
    return check('ConvTranspose', [xs, ws, [cout]], (b, [x, w, bias]) => b.convTranspose(x!, w!, bias!, o), F32_LINEAR);
  });
});

describe('Resize, reductions, softmax, normalisation', () => {
  it.each([
    [
      [1, 2, 3, 3],
      [1, 1, 2, 2],
    ],
    [
      [2, 1, 2, 3],
      [1, 1, 2, 1],
    ],
    [
      [2, 3],
      [2, 3],
    ],
  ])('Resize nearest %j x %j', (s, scales) => check('Resize', [s], (b, [x]) => b.upsample(x!, scales), F32_LINEAR));
  const RED: [number[], number[] | undefined, boolean][] = [
    [[2, 3, 4], [1], false],
    [[2, 3, 4], [1], true],
    [[2, 3, 4], [0, 2], false],
    [[2, 3, 4], [-1], true],
    [[2, 3, 4], undefined, false],
    [[2, 3, 4], undefined, true],
    [[5], [0], false],
  ];
  it.each(RED)('ReduceSum %j axes %j keepdims %s', (s, axes, keep) =>
    check('ReduceSum', [s], (b, [x]) => b.reduceSum(x!, axes, keep)),
  );
  it.each(RED)('ReduceMean %j axes %j keepdims %s', (s, axes, keep) =>
    check('ReduceMean', [s], (b, [x]) => b.reduceMean(x!, axes, keep)),
  );
  it.each([
    [[2, 3, 4], -1],
    [[2, 3, 4], 1],
    [[2, 3, 4], 0],
    [[5], 0],
  ])('Softmax %j axis %d', (s, axis) =>
    check('Softmax', [s], (b, [x]) => b.softmax(x!, axis), { sample: samplers.normal() }),
  );
  const LN: [number[], number, number[]][] = [
    [[2, 5], -1, [5]],
    [[2, 3, 4], -1, [4]],
    [[2, 3, 4], 1, [3, 4]],
    [[2, 3, 4], 1, [1, 4]],
  ];
  it.each(LN)('LayerNormalization float64 (recomputed statistics) %j axis %d scale %j', (s, axis, ss) =>
    check('LayerNormalization', [s, ss, ss], (b, [x, g, bb]) => b.layerNorm(x!, g!, bb!, { axis }), {
      sample: samplers.normal(),
    }),
  );
  it.each(LN)('LayerNormalization float32 (saved statistics) %j axis %d scale %j', (s, axis, ss) =>
    check('LayerNormalization f32', [s, ss, ss], (b, [x, g, bb]) => b.layerNorm(x!, g!, bb!, { axis }), {
      dtype: 'float32',
      h: 1e-2,
      tol: 5e-3,
      sample: samplers.normal(),
    }),
  );
  it('LayerNormalization without bias', () =>
    check('LayerNormalization', [[3, 4], [4]], (b, [x, g]) => b.layerNorm(x!, g!, null), {
      sample: samplers.normal(),
    }));
  it.each([
    [[1, 4, 2, 2], 2],
    [[2, 6, 3, 3], 3],
    [[2, 4, 5], 4],
    [[3, 4, 2, 1, 3], 1],
  ])('GroupNorm (fused, closed-form rule) %j groups %d', (s, groups) =>
    check('GroupNorm', [s, [s[1]!], [s[1]!]], (b, [x, g, bb]) => b.groupNorm(x!, groups, g!, bb!), {
      sample: samplers.normal(),
    }),
  );
  it.each([
    [[1, 4, 2, 2], 2],
    [[2, 6, 3, 3], 3],
    [[3, 4, 2, 1, 3], 1],
  ])('GroupNormSiLU (fused, recomputing its forward values) %j groups %d', (s, groups) =>
    // float32: ORT fuses the forward x sigmoid(x) into com.microsoft.QuickGelu, which has only a float kernel.
    check('GroupNormSiLU', [s, [s[1]!], [s[1]!]], (b, [x, g, bb]) => b.groupNormSilu(x!, groups, g!, bb!), {
      dtype: 'float32',
      h: 1e-2,
      tol: 5e-3,
      sample: samplers.normal(),
    }),
  );
  it('GroupNorm read twice (its input also feeds another op)', () =>
    check('GroupNorm', [[2, 4, 3], [4], [4]], (b, [x, g, bb]) => b.mul(b.groupNorm(x!, 2, g!, bb!), b.tanh(x!)), {
      sample: samplers.normal(),
    }));
  it.each([
    [[2, 3, 4], [1], true],
    [[2, 3, 4], [0, 2], false],
    [[5], undefined, false],
  ] as const)('ReduceSumSquare %j axes %j keepdims %s', (s, axes, keep) =>
    check('ReduceSumSquare', [[...s]], (b, [x]) => b.reduceSumSquare(x!, axes && [...axes], keep)),
  );
});

describe('shape ops', () => {
  it('Reshape', () => check('Reshape', [[2, 3, 4]], (b, [x]) => b.reshape(x!, [4, -1])));
  it('Reshape to a scalar and back', () => check('Reshape', [[1, 1]], (b, [x]) => b.reshape(b.reshape(x!, []), [1])));
  it.each([[[1, 0]], [[2, 0, 1]], [[0, 2, 1, 3]]])('Transpose %j', (perm) =>
    check('Transpose', [perm.length === 2 ? [2, 3] : perm.length === 3 ? [2, 3, 4] : [2, 1, 3, 2]], (b, [x]) =>
      b.transpose(x!, perm),
    ),
  );
  it('Concat axis 1 with three inputs of different widths', () =>
    check(
      'Concat',
      [
        [2, 1, 3],
        [2, 2, 3],
        [2, 3, 3],
      ],
      (b, xs) => b.concat(xs, 1),
    ));
  it('Concat axis 0, an input used twice', () =>
    check(
      'Concat',
      [
        [2, 3],
        [1, 3],
      ],
      (b, [x, y]) => b.concat([x!, y!, x!], 0),
    ));
  it.each([
    [[0], [2], [0], undefined],
    [[1, 1], [3, -1], [0, 2], undefined],
    [[-3], [100], [1], undefined],
    [[1, 0], [2, 2], [2, 1], undefined],
    [[0], [5], [2], [2]],
    [[1], [100], [2], [3]],
    [[-1], [-100], [1], [-1]],
    [
      [3, 4],
      [0, 0],
      [2, 0],
      [-2, -1],
    ],
    [
      [0, 1, 3],
      [3, 4, -100],
      [0, 1, 2],
      [2, 2, -3],
    ],
  ])('Slice starts %j ends %j axes %j steps %j', (starts, ends, axes, steps) =>
    check('Slice', [[3, 4, 5]], (b, [x]) => b.slice(x!, starts, ends, axes, steps)),
  );
  it('Slice with an empty result', () =>
    check('Slice', [[3, 4]], (b, [x]) => b.add(b.reduceSum(b.slice(x!, [2], [1], [0])), b.reduceSum(x!))));
  it.each([
    [[3, 4], [2, 0, 2], 0],
    [[3, 4], [3, 1, -1, 3], 1],
    [
      [2, 3, 4],
      [
        [1, 1],
        [0, 2],
      ],
      1,
    ],
    [[5], [4, 4, 4], 0],
  ])('Gather %j indices %j axis %d (repeated indices accumulate)', (s, idx, axis) =>
    check('Gather', [s], (b, [x]) => {
      const flat = (idx as (number | number[])[]).flat();
      const ishape = Array.isArray(idx[0]) ? [idx.length, (idx[0] as number[]).length] : [idx.length];
      return b.gather(x!, b.constant(flat, 'int64', ishape), axis);
    }),
  );
  it('Gather with int32 indices', () =>
    check('Gather', [[4, 3]], (b, [x]) => b.gather(x!, b.constant([3, 0, 3], 'int32', [3]), 0)));
  it.each([[[1, 0, 2, 1]], [[0, 0, 0, 3]], [[-1, 1, 2, -2]]])('Pad %j', (pads) =>
    check('Pad', [[3, 4]], (b, [x]) => b.pad(x!, pads, { value: 0.5 })),
  );
  it.each([
    ['reflect', [1, 0, 2, 3]],
    ['reflect', [0, 3, 1, 0]],
    ['edge', [2, 1, 0, 3]],
    ['edge', [0, 0, 1, 0]],
  ] as const)('Pad %s %j', (mode, pads) => check('Pad', [[3, 4]], (b, [x]) => b.pad(x!, pads, { mode })));
  it('Pad reflect on 4-D (both spatial axes)', () =>
    check('Pad', [[1, 2, 3, 3]], (b, [x]) => b.pad(x!, [0, 0, 2, 1, 0, 0, 1, 2], { mode: 'reflect' })));
  it.each([
    [[3], [2, 3]],
    [
      [2, 1],
      [2, 4],
    ],
    [
      [1, 3],
      [4, 2, 3],
    ],
    [[], [2, 2]],
  ])('Expand %j to %j', (s, to) => check('Expand', [s], (b, [x]) => b.expand(x!, to)));
  it('Squeeze', () => check('Squeeze', [[2, 1, 3, 1]], (b, [x]) => b.squeeze(x!, [1, -1])));
  it('Unsqueeze', () => check('Unsqueeze', [[2, 3]], (b, [x]) => b.unsqueeze(x!, [0, 3])));
  it.each([
    [[3, 4], [1], false],
    [[2, 3, 4], [0, 2], true],
    [[5], undefined, false],
  ])('ReduceMax %j axes %j keepdims %s', (s, axes, keep) =>
    check('ReduceMax', [s], (b, [x]) => b.reduceMax(x!, axes, keep)),
  );
  it('ArgMax and ArgMin pass no gradient (and are not an error)', () =>
    check('ArgMax/ArgMin', [[3, 4]], (b, [x]) => {
      const am = b.cast(b.argMax(x!, 1, true), 'float64');
      const an = b.cast(b.argMin(x!, 0, false), 'float64');
      return b.add(b.mul(x!, am), an);
    }));
});

describe('float32 checks of the float64-checked ops (the precision models run in)', () => {
  const f32 = { dtype: 'float32', h: 1e-2, tol: 5e-3 } as const;
  it('MatMul', () =>
    check(
      'MatMul f32',
      [
        [2, 2, 3],
        [3, 4],
      ],
      (b, [x, y]) => b.matmul(x!, y!),
      F32_LINEAR,
    ));
  it('Softmax', () => check('Softmax f32', [[2, 5]], (b, [x]) => b.softmax(x!), { ...f32, sample: samplers.normal() }));
  it('Sigmoid * Tanh', () => check('Sigmoid*Tanh f32', [[2, 5]], (b, [x]) => b.mul(b.sigmoid(x!), b.tanh(x!)), f32));
  it('GroupNorm', () =>
    check('GroupNorm f32', [[1, 4, 3, 3], [4], [4]], (b, [x, g, bb]) => b.groupNorm(x!, 2, g!, bb!), {
      ...f32,
      sample: samplers.normal(),
    }));
});

describe('composites built from ruled ops', () => {
  it('linear (PyTorch weight layout)', () =>
    check('linear', [[2, 3], [4, 3], [4]], (b, [x, w, bias]) => b.linear(x!, w!, bias!)));
  it('gelu (float32: Erf)', () =>
    check('gelu', [[2, 5]], (b, [x]) => b.gelu(x!), {
      dtype: 'float32',
      h: 1e-2,
      tol: 5e-3,
      sample: samplers.normal(),
    }));
  // float32: in float64, ORT 1.30's 'all' optimisations fuse x*sigmoid(a*x) into com.microsoft.QuickGelu,
  // which has only a float kernel, and the session fails to load.
  const f32 = { dtype: 'float32', h: 1e-2, tol: 5e-3, sample: samplers.normal() } as const;
  it('quickGelu (float32; fused op, closed-form rule)', () =>
    check('QuickGelu', [[2, 5]], (b, [x]) => b.quickGelu(x!), f32));
  it('silu (float32; fused op, closed-form rule)', () => check('SiLU', [[2, 5]], (b, [x]) => b.silu(x!), f32));
  it('silu whose sigmoid is read by another op too', () =>
    check('SiLU', [[2, 5]], (b, [x]) => {
      const y = b.silu(x!);
      return b.add(y, b.mul(y.producer!.inputs[1]!, 3));
    }));
  it('clampWithGrad inside the range is the identity (fused op)', () =>
    check('ClampWithGrad', [[3, 4]], (b, [x]) => b.clampWithGrad(x!, 0, 1), { sample: samplers.uniform(0.1, 0.9) }));
  it('l2Normalize', () => check('l2Normalize', [[3, 4]], (b, [x]) => b.l2Normalize(x!, -1)));
  it('adaptiveAvgPool2d 7x5 -> 3x2', () =>
    check('adaptiveAvgPool2d', [[1, 2, 7, 5]], (b, [x]) => b.adaptiveAvgPool2d(x!, [3, 2])));
  it('resizeBilinear 3x4 -> 5x2', () =>
    check('resizeBilinear', [[2, 1, 3, 4]], (b, [x]) => b.resizeBilinear(x!, [5, 2])));
  it('split', () => check('split', [[2, 7]], (b, [x]) => b.split(x!, [2, 4, 1], 1)));
  it('Gather with computed (runtime) indices', () =>
    check(
      'Gather',
      [
        [4, 3],
        [2, 4],
      ],
      (b, [x, s]) => b.gather(x!, b.argMax(b.stopGradient(s!), 1, false), 0),
      {
        wrt: [0],
      },
    ));
});

describe('coverage', () => {
  it('every op with a gradient rule was checked above against finite differences', () => {
    const missing = Object.keys(RULES).filter((op) => !NON_DIFFERENTIABLE.has(op) && !opsChecked.has(op));
    expect(missing).toEqual([]);
  });
});
