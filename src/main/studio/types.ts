// The application services as the transports (Electron IPC, HTTP server, CLI) see them.
import type { EventName, EventPayload, StudioHandlers } from '../../shared/api.js';

export interface StudioOptions {
  /** Absolute path of the data folder (created if missing). */
  dataDir: string;
  /** Versions of the host, filled in by the Electron shell; null in plain Node. */
  host?: { electron: string | null; chrome: string | null };
}

export type AssetVariant = 'file' | 'thumb';

export interface Studio {
  readonly dataDir: string;
  /** One async function per StudioApi call; arguments already validated by the transport. */
  readonly handlers: StudioHandlers;
  on<K extends EventName>(name: K, listener: (payload: EventPayload<K>) => void): () => void;
  /**
   * The file behind an asset for the image protocol / HTTP route. Only ever resolves to a path
   * inside the data folder; null for an unknown hash or variant.
   */
  assetFile(sha256: string, variant: AssetVariant): Promise<{ path: string; mime: string } | null>;
  close(): Promise<void>;
}
