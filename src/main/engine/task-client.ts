// Typed calls of the compute worker's tasks from the main thread: the names, arguments and results of
// tasks.ts, without loading its code here (type-only import).
import type { DeviceRunner, TaskOptions } from './runtime/runner.js';
import type { Tasks } from './tasks.js';

export type TaskName = keyof Tasks;
export type TaskArgs<K extends TaskName> = Parameters<Tasks[K]>[0];
export type TaskResult<K extends TaskName> = Awaited<ReturnType<Tasks[K]>>;

/** Runs task `name` on the runner's worker; stream messages reach opts.onStream. */
export function runTask<K extends TaskName, S = unknown>(
  runner: DeviceRunner,
  name: K,
  args: TaskArgs<K>,
  opts?: TaskOptions<S>,
): Promise<TaskResult<K>> {
  return runner.task<TaskResult<K>, S>(name, args, opts);
}
