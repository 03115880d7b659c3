// The StudioApi's call and event names, without zod: the sandboxed preload must stay a small
// self-contained script. The checks below fail the build when api.ts gains a name that is
// missing here (or loses one that is still here).
import type { CallName, EventName, EventSubscriber } from '../shared/api.js';

export const callNames = [
  'getSystemInfo',
  'getSettings',
  'updateSettings',
  'galleryQuery',
  'galleryCount',
  'getItem',
  'setFavourite',
  'setNote',
  'setTags',
  'deleteItems',
  'undoDelete',
  'importImages',
  'exportItem',
  'modelsList',
  'modelPull',
  'modelCancel',
  'modelImport',
  'modelVerify',
  'modelRemove',
  'checkGradients',
  'jobList',
  'jobCancel',
  'generate',
  'generateQueue',
  'generateMove',
  'generatePause',
  'generateResume',
  'generateCancel',
  'generateContinue',
  'getRun',
  'exportTrajectory',
  'generateEstimate',
  'generateWarmup',
  'watchList',
  'watchAdd',
  'watchRemove',
  'historyRuns',
  'classifyTemplateSets',
  'classifyParseTemplates',
  'classifyStart',
  'classifyRun',
  'classifyRows',
  'classifyRuns',
  'classifyCalibrate',
  'classifyExplore',
  'classifyExport',
  'classifyCopy',
  'classifyTag',
  'classifyThumb',
  'promptTextModels',
  'promptModelsList',
  'promptModelGet',
  'promptModelSave',
  'promptModelDelete',
  'promptModelExport',
  'promptModelImport',
  'promptTry',
  'promptRun',
  'promptRunRows',
  'promptRuns',
  'promptRunGet',
  'promptCompare',
  'promptExportRun',
  'promptExplore',
  'promptExploreGet',
] as const satisfies readonly CallName[];

export const eventNames = [
  'galleryChanged',
  'importProgress',
  'settingsChanged',
  'modelProgress',
  'modelsChanged',
  'jobProgress',
  'jobFrame',
  'queueChanged',
  'dataFolderChecked',
  'watchChanged',
  'watchRemoved',
  'promptRows',
  'promptTryDelta',
] as const satisfies readonly EventName[];

type Exhaustive<All, Listed> = [Exclude<All, Listed>] extends [never] ? true : { missing: Exclude<All, Listed> };
export const _allCallsListed: Exhaustive<CallName, (typeof callNames)[number]> = true;
export const _allEventsListed: Exhaustive<EventName, (typeof eventNames)[number]> = true;

export function subscriberName<K extends EventName>(name: K): EventSubscriber<K> {
  return `on${name[0]!.toUpperCase()}${name.slice(1)}` as EventSubscriber<K>;
}

/** IPC channels: one invoke channel for every call, one send channel for every event. */
export const CALL_CHANNEL = 'studio:call';
export const EVENT_CHANNEL = 'studio:event';
