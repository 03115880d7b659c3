// Reverse-mode differentiation over the IR (micrograd's backward(), tinygrad's compute_gradient): one
// driver walks the nodes in reverse creation (topological) order and applies the rule table of
// grad-rules.ts. The driver owns everything that is the same for every op: which tensors need a
// gradient, summing a gradient down from the broadcast shape to the input's shape (from static
// shapes, once, here), accumulating the gradients of tensors read more than once, and the markers
// stopGradient (nothing flows back) and straightThrough (the gradient goes to the backward tensor).
//
// Public API
//   grad(b, loss, wrt, opts?) -> Tensor[]   appends the backward nodes to b's graph and returns d(sum of loss)/d(wrt_k),
//                                           each shaped like wrt_k. opts.seed replaces the all-ones seed (shape of loss).
//   GradOptions
//
// A node on the path from `wrt` to `loss` whose op has no rule throws `no gradient rule for op 'X' (node n)`.
// Integer and boolean tensors never carry a gradient (ArgMax, comparisons, Gather indices), so ops
// that produce only those stop the walk without being errors.

import { type Builder } from './builder.js';
import { NON_DIFFERENTIABLE, RULES, type RuleContext } from './grad-rules.js';
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
      sized = b.sumTo(g, t.shape);
    } catch (e) {
      throw new Error(`grad: rule for ${node?.opType} (${node?.name}): ${(e as Error).message}`);
    }
    const list = parts.get(t);
    if (summed.has(t)) throw new Error(`grad: internal error, ${t.name} got a gradient after it was read`);
    if (list) list.push(sized);
    else parts.set(t, [sized]);
  };
  const read = (t: Tensor): Tensor | null => {
    if (summed.has(t)) return summed.get(t)!;
    const list = parts.get(t);
    let g: Tensor | null = null;
    if (list) g = list.reduce((acc, x) => b.add(acc, x));
    summed.set(t, g);
    return g;
  };

  if (active.has(loss)) {
    contribute(loss, opts.seed ?? b.ones(loss.shape, loss.dtype), null);
    for (let k = end; k >= 0; k--) {
      const node = graph.nodes[k]!;
      if (!node.outputs.some((o) => active.has(o))) continue;
      const dys = node.outputs.map((o) => (active.has(o) ? read(o) : null));
      if (dys.every((d) => d === null)) continue;
      if (node.marker?.kind === 'straightThrough') {
        contribute(node.marker.backward, dys[0]!, node);
        continue;
      }
      const rule = RULES[node.opType];
      if (!rule) throw new Error(`grad: no gradient rule for op '${node.opType}' (node ${node.name})`);
      const y0 = node.outputs[0]!;
      const ctx: RuleContext = {
        b,
        node,
        x: node.inputs,
        y: node.outputs,
        dy: dys[0] ?? b.zeros(y0.shape, y0.dtype),
        dys,
        needs: (i) => {
          const t = node.inputs[i];
          return t !== null && t !== undefined && active.has(t);
        },
      };
      const res = rule(ctx);
      if (res.length < node.inputs.length) {
        throw new Error(
          `grad: rule for ${node.opType} returned ${res.length} gradients for ${node.inputs.length} inputs`,
        );
      }
      node.inputs.forEach((t, i) => {
        if (!t || !active.has(t)) return;
        const g = res[i];
        if (!g) throw new Error(`grad: rule for ${node.opType} gave no gradient for input ${i} (${node.name})`);
        contribute(t, g, node);
      });
    }
  }

  return wrt.map((t) => read(t) ?? b.zeros(t.shape, t.dtype));
}
