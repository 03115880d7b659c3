// Jobs: long work the studio runs for a client (a model download, a gradient check on the GPU, a generation,
// a prompt run or exploration, a classification). Every job has an id; its events carry it, so a client follows
// one job among many. Progress travels as `jobProgress` (JSON); preview frames as `jobFrame`, whose
// bytes cross as binary (a WebSocket binary frame, an IPC structured clone), never as base64 text.
// A client that reconnects asks `jobList` for the jobs it follows and carries on from their state.
import { z } from 'zod';
import { Bytes } from './common.js';
import { RunState } from './runs.js';

export const JobKind = z.enum(['model-pull', 'gradcheck', 'generate', 'prompt', 'classify']);
export type JobKind = z.infer<typeof JobKind>;

/** A job's state: a run's states (a job that records a run moves its run with it). */
export const JobState = RunState;
export type JobState = RunState;

/** The terminal states: the job will send nothing more. */
export const FINISHED_JOB_STATES: readonly JobState[] = ['done', 'failed', 'cancelled'];

export const JobId = z.string().min(1).max(100);

export const JobStatus = z.object({
  jobId: JobId,
  kind: JobKind,
  /** What it is, for a list of jobs ("Download clip-vit-base-patch32", "Gradient check on webgpu"). */
  title: z.string(),
  state: JobState,
  /** Work done and to do, in the job's own unit (steps, bytes, cases); total null when not known. */
  step: z.number(),
  total: z.number().nullable(),
  /** The latest named values (a step's losses, bytes per second). */
  values: z.record(z.string(), z.number()),
  /** One line on what it is doing now, or how it ended. */
  message: z.string(),
  /** Why it failed, for a failed job. */
  error: z.object({ name: z.string(), message: z.string() }).nullable(),
  /** The history run it records, if any. */
  runId: z.number().int().nullable(),
  startedAt: z.number(),
  updatedAt: z.number(),
  /** The step of its latest preview frame, if it sent one. */
  frameStep: z.number().nullable(),
});
export type JobStatus = z.infer<typeof JobStatus>;

export const JobFrame = z.object({
  jobId: JobId,
  step: z.number(),
  mime: z.enum(['image/png', 'image/webp', 'image/jpeg']),
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  data: Bytes,
});
export type JobFrame = z.infer<typeof JobFrame>;

export const jobCalls = {
  /** The jobs with these ids (those still known), or every job of this session when no ids are given. */
  jobList: { args: z.object({ ids: z.array(JobId).max(1000).optional() }).strict(), result: z.array(JobStatus) },
  /** Asks a job to stop; it ends 'cancelled' at its next step (false when it is unknown or already over). */
  jobCancel: { args: z.object({ jobId: JobId }).strict(), result: z.object({ cancelled: z.boolean() }) },
} as const;

export const jobEvents = {
  jobProgress: JobStatus,
  jobFrame: JobFrame,
} as const;
