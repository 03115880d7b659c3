// Reverse-mode differentiation over the IR (micrograd's backward(), tinygrad's compute_gradient): one
// driver walks the nodes in reverse creation (topological) order and applies the rule table of
// grad-rules.ts. The driver owns everything that is the same for every op: which tensors need a
// gradient, fitting a gradient to the input's shape (summing broadcast axes down, from static shapes,
// once, here), accumulating the gradients of tensors read more than once, and the markers
// stopGradient (nothing flows back), straightThrough (the gradient goes to the backward tensor) and
// fused (a composite of several ops differentiated as one, by the rule of its name).
//
// Public API
//   grad(b, loss, wrt, opts?) -> Tensor[]   appends the backward nodes to b's graph and returns d(sum of loss)/d(wrt_k),
//                                           each shaped like wrt_k. opts.seed replaces the all-ones seed (shape of loss).
//   GradOptions
//
// Kept dimensions: a gradient may be smaller than its tensor along axes where it is constant (the gradient
// of a ReduceSum or ReduceMean is its output's gradient broadcast back). The driver keeps it that way while
// it flows through elementwise rules (BROADCAST_DY: their results broadcast anyway) and materialises it
// with one Expand only where a rule needs the full shape, so no full-size copy is made for nothing.
//
// A node on the path from `wrt` to `loss` whose op has no rule throws `no gradient rule for op 'X' (node n)`.
// Integer and boolean tensors never carry a gradient (ArgMax, comparisons, Gather indices), so ops
// that produce only those stop the walk without being errors.

import { type Builder } from './builder.js';
import { BROADCAST_DY, NON_DIFFERENTIABLE, RULES, type RuleContext } from './grad-rules.js';
import { type Node, type Tensor, isFloat } from './ir.js';

export interface GradOptions {
  /** Gradient of the loss itself (default ones shaped like loss). */
  seed?: Tensor;
}

export function grad(b: Builder, loss: Tensor, wrt: readonly Tensor[], opts: GradOptions = {}): Tensor[] {
  const graph = b.graph;
  for (const t of [loss, ...wrt]) {
    if (t.graph !== graph) throw new Error(`grad: ${t.name} belongs to another graph`);
    if (!isFloat(t.dtype)) throw new Error(`grad: ${t} is not a float tensor`);
  }
  if (opts.seed && (opts.seed.shape.join() !== loss.shape.join() || opts.seed.dtype !== loss.dtype)) {
    throw new Error(`grad: seed ${opts.seed} does not match loss ${loss}`);
  }
  const end = loss.producer ? loss.producer.index : -1;

  // Forward pass over the graph: which tensors depend on some wrt tensor (and so need a gradient).
  const active = new Set<Tensor>(wrt);
  for (const n of graph.nodes) {
    if (n.index > end) break;
    let on: boolean;
    if (n.marker?.kind === 'stopGradient') on = false;
    else if (n.marker?.kind === 'straightThrough') on = active.has(n.marker.backward);
    else if (n.marker?.kind === 'fused') on = n.marker.inputs.some((t) => active.has(t));
    else on = n.inputs.some((t) => t !== null && active.has(t));
    if (!on || NON_DIFFERENTIABLE.has(n.opType)) continue;
    for (const o of n.outputs) if (isFloat(o.dtype)) active.add(o);
  }

  // Gradient contributions per tensor, summed on first read.
  const parts = new Map<Tensor, Tensor[]>();
  const summed = new Map<Tensor, Tensor | null>();
  const contribute = (t: Tensor, g: Tensor, node: Node | null) => {
    if (g.dtype !== t.dtype) {
      throw new Error(`grad: rule for ${node?.opType} gave a ${g.dtype} gradient for ${t} (${node?.name})`);
    }
    let sized: Tensor;
    try {
      sized = b.sumToward(g, t.shape);
    } catch (e) {
      throw new Error(`grad: rule for ${node?.opType} (${node?.name}): ${(e as Error).message}`);
    }
    const list = parts.get(t);
    if (summed.has(t)) throw new Error(`grad: internal error, ${t.name} got a gradient after it was read`);
    if (list) list.push(sized);
    else parts.set(t, [sized]);
  };
  /** The summed gradient of t; smaller than t along kept axes unless `full`. */
  const read = (t: Tensor, full: boolean): Tensor | null => {
    let g: Tensor | null;
    if (summed.has(t)) g = summed.get(t)!;
    else {
      const list = parts.get(t);
      g = list ? list.reduce((acc, x) => b.add(acc, x)) : null;
      summed.set(t, g);
    }
    if (g && full && g.shape.join() !== t.shape.join()) {
      g = b.expand(g, t.shape);
      summed.set(t, g);
    }
    return g;
  };

  if (active.has(loss)) {
    contribute(loss, opts.seed ?? b.ones(loss.shape, loss.dtype), null);
    for (let k = end; k >= 0; k--) {
      const node = graph.nodes[k]!;
      if (!node.outputs.some((o) => active.has(o))) continue;
      const marker = node.marker;
      const op = marker?.kind === 'fused' ? marker.op : node.opType;
      const full = marker?.kind !== 'straightThrough' && !BROADCAST_DY.has(op);
      const dys = node.outputs.map((o) => (active.has(o) ? read(o, full) : null));
      if (dys.every((d) => d === null)) continue;
      if (marker?.kind === 'straightThrough') {
        contribute(marker.backward, dys[0]!, node);
        continue;
      }
      const rule = RULES[op];
      if (!rule) {
        const what = marker?.kind === 'fused' ? `fused op '${op}'` : `op '${op}'`;
        throw new Error(`grad: no gradient rule for ${what} (node ${node.name})`);
      }
      const inputs = marker?.kind === 'fused' ? marker.inputs : node.inputs;
      const y0 = node.outputs[0]!;
      const ctx: RuleContext = {
        b,
        node,
        x: inputs,
        y: node.outputs,
        dy: dys[0] ?? b.zeros(y0.shape, y0.dtype),
        dys,
        saved: marker?.kind === 'fused' ? (marker.saved ?? []) : [],
        needs: (i) => {
          const t = inputs[i];
          return t !== null && t !== undefined && active.has(t);
        },
      };
      const res = rule(ctx);
      if (res.length < inputs.length) {
        throw new Error(`grad: rule for ${op} returned ${res.length} gradients for ${inputs.length} inputs`);
      }
      inputs.forEach((t, i) => {
        if (!t || !active.has(t)) return;
        const g = res[i];
        if (!g) throw new Error(`grad: rule for ${op} gave no gradient for input ${i} (${node.name})`);
        contribute(t, g, node);
      });
    }
  }

  return wrt.map((t) => read(t, true) ?? b.zeros(t.shape, t.dtype));
}
