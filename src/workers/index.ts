/** Worker groups: one maio server per CPU (src/workers/). */
export { startWorkers, WorkerGroup, MaioWorker } from './group';
export type { StartWorkersOptions, RestartOptions, WorkerState, WorkerExitInfo, WorkerGroupEvents, GroupStats, StopResult } from './group';
export { currentWorker, WorkerContext } from './runtime';
export type { WorkerContextEvents } from './runtime';
export type { WorkerStats } from './protocol';
export type { SteeringState } from './steering';
export { allowedCpus, parseCpuList, formatCpuList, setThreadAffinity, threadAffinity, threadId } from './cpus';
export { probeCpuSteering } from './steering';
export { sumNumbers, sumPrometheus } from './aggregate';
