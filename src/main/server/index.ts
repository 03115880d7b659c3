export { startServer, DEFAULT_MAX_BODY, type RunningServer, type ServerOptions } from './server.js';
export { dispatchCall, type CallOutcome } from '../api/dispatch.js';
