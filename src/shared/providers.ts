// Execution providers: the one list every layer uses (the API's enum, the runtime's probes and
// 'auto' order, the CLI's --provider choices, the Settings page's labels).
import { z } from 'zod';

/** Every execution provider the studio knows, in the order reports list them. */
export const EXPLICIT_PROVIDERS = ['cpu', 'webgpu', 'cuda', 'dml', 'coreml'] as const;
export type ExplicitProvider = (typeof EXPLICIT_PROVIDERS)[number];

/** What a user may ask for: a provider, or 'auto' (the best this machine has). */
export const PROVIDER_CHOICES = ['auto', ...EXPLICIT_PROVIDERS] as const;
export const Provider = z.enum(PROVIDER_CHOICES);
export type Provider = z.infer<typeof Provider>;

export const ProviderReport = z.object({
  name: z.enum(EXPLICIT_PROVIDERS),
  available: z.boolean(),
  /** Why it is or is not usable, in words a user can act on. */
  reason: z.string(),
  /** Time of the probe session, when one ran. */
  ms: z.number().nullable(),
  /** It works, but on a software renderer (WebGPU on Mesa's lavapipe): slow, slower than the CPU provider. */
  software: z.boolean().optional(),
});
export type ProviderReport = z.infer<typeof ProviderReport>;
