/**
 * Task queues: tasks waiting for a poller and pollers waiting for a task (long polls). A task is only a
 * reference; the engine checks, when a poller takes it, that it is still current and builds the response.
 */

export type QueueKind = 'workflow' | 'activity';

export interface Poller<T> {
  /** Identifies the worker, so that ShutdownWorker can complete its polls. */
  workerKey: string;
  /** The worker's identity as it gave it (`DescribeTaskQueue` lists it). */
  identity: string;
  /** Hands a task to the poller. Returns false if the task was stale and the poller should keep waiting. */
  offer(task: T): boolean;
  /** Completes the poll with an empty response. */
  release(): void;
}

interface Queue<T> {
  tasks: T[];
  pollers: Poller<T>[];
  lastPollAt: number;
  /** When each identity last polled, for `DescribeTaskQueue`. */
  seen: Map<string, number>;
}

/** A worker that polled a queue lately, as `DescribeTaskQueue` reports it. */
export interface RecentPoller {
  identity: string;
  /** When its last poll began, epoch milliseconds. */
  lastAccessTime: number;
}

/** How long a poller that stopped polling is still listed: Temporal's poller history keeps them 5 minutes. */
const POLLER_HISTORY_MS = 5 * 60_000;

export class TaskQueues<T> {
  private readonly queues = new Map<string, Queue<T>>();

  private queue(namespace: string, kind: QueueKind, name: string): Queue<T> {
    const key = `${namespace}\u0000${kind}\u0000${name}`;
    let queue = this.queues.get(key);
    if (!queue) {
      queue = { tasks: [], pollers: [], lastPollAt: 0, seen: new Map() };
      this.queues.set(key, queue);
    }
    return queue;
  }

  /** Adds a task: a waiting poller takes it at once, otherwise it waits in FIFO order. */
  add(namespace: string, kind: QueueKind, name: string, task: T): void {
    const queue = this.queue(namespace, kind, name);
    while (queue.pollers.length > 0) {
      const poller = queue.pollers.shift()!;
      if (poller.offer(task)) return;
    }
    queue.tasks.push(task);
  }

  /**
   * Registers a poll. Returns a function that withdraws it (call cancelled or long-poll expired).
   * Queued tasks are offered first; stale ones are dropped.
   */
  poll(namespace: string, kind: QueueKind, name: string, poller: Poller<T>, now: number): () => void {
    const queue = this.queue(namespace, kind, name);
    queue.lastPollAt = now;
    queue.seen.set(poller.identity, now);
    while (queue.tasks.length > 0) {
      const task = queue.tasks.shift()!;
      if (poller.offer(task)) return () => undefined;
    }
    queue.pollers.push(poller);
    return () => {
      const index = queue.pollers.indexOf(poller);
      if (index >= 0) queue.pollers.splice(index, 1);
    };
  }

  /** Completes every waiting poll of one worker with an empty response (ShutdownWorker). */
  releaseWorker(workerKey: string): void {
    for (const queue of this.queues.values()) {
      const mine = queue.pollers.filter((p) => p.workerKey === workerKey);
      queue.pollers = queue.pollers.filter((p) => p.workerKey !== workerKey);
      for (const poller of mine) poller.release();
    }
  }

  /** Removes a queue's waiting tasks and returns them (a sticky queue whose worker went away). */
  drain(namespace: string, kind: QueueKind, name: string): T[] {
    const queue = this.queue(namespace, kind, name);
    const tasks = queue.tasks;
    queue.tasks = [];
    return tasks;
  }

  /** Number of pollers currently waiting on a queue. */
  pollerCount(namespace: string, kind: QueueKind, name: string): number {
    return this.queue(namespace, kind, name).pollers.length;
  }

  /**
   * The workers that polled a queue within the last 5 minutes, most recent first. As on Temporal, the time is
   * when a poll began: an idle worker in the middle of a long poll reads up to a long poll old.
   */
  recentPollers(namespace: string, kind: QueueKind, name: string, now: number): RecentPoller[] {
    const queue = this.queue(namespace, kind, name);
    const recent: RecentPoller[] = [];
    for (const [identity, at] of queue.seen) {
      if (now - at <= POLLER_HISTORY_MS) recent.push({ identity, lastAccessTime: at });
      else queue.seen.delete(identity);
    }
    return recent.sort((a, b) => b.lastAccessTime - a.lastAccessTime);
  }

  lastPollAt(namespace: string, kind: QueueKind, name: string): number {
    return this.queue(namespace, kind, name).lastPollAt;
  }

  releaseAll(): void {
    for (const queue of this.queues.values()) {
      const pollers = queue.pollers;
      queue.pollers = [];
      for (const poller of pollers) poller.release();
    }
  }
}
