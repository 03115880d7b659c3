// The jobs this window follows: every jobProgress event lands here (one exported $state object,
// replaced per job), so any view can show a job's progress by its id. After a reconnect the client
// asks for the state of the jobs it followed (studio-client.ts), and those answers land here too.
import type { JobStatus } from '../../../shared/api.js';
import { getStudio } from './studio-client.js';

export const jobs = $state<{ byId: Record<string, JobStatus> }>({ byId: {} });

let subscribed = false;

/** Starts listening (once); returns the store. */
export function followJobs(): typeof jobs {
  if (!subscribed) {
    subscribed = true;
    getStudio().onJobProgress((s) => {
      jobs.byId[s.jobId] = s;
    });
  }
  return jobs;
}
