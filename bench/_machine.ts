// What a benchmark ran on: the machine as a JSON object for its results file, and as one line for its output.
import os from 'node:os';

export interface Machine {
  cpu: string | undefined;
  cores: number;
  memGB: number;
  platform: string;
}

export function machine(): Machine {
  const cpu = os.cpus();
  return {
    cpu: cpu[0]?.model,
    cores: cpu.length,
    memGB: os.totalmem() / 1e9,
    platform: `${os.platform()} ${os.arch()}`,
  };
}

/** "Intel(R) Xeon(R) Processor (2 logical CPUs, 25.3 GB), linux x64, node v20.20.2" */
export function machineLine(): string {
  const m = machine();
  return `${m.cpu ?? '?'} (${m.cores} logical CPUs, ${m.memGB.toFixed(1)} GB), ${m.platform}, node ${process.version}`;
}
