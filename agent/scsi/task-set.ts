// SAM-5 §8 task set management: SIMPLE runs concurrently, ORDERED waits for earlier tasks and holds later
// ones back, HEAD OF QUEUE runs at once; aborts resolve the task's response promptly.
import { TaskAttribute, type ScsiResponse } from './port.js';

export interface Task {
  readonly nexusId: string;
  readonly tag: number;
  readonly attr: TaskAttribute;
  aborted: boolean;
  /** Resolves execute() early when the task is aborted. */
  abortWith?: (r: ScsiResponse) => void;
  /** Created on demand for ORDERED tasks that must wait for this one. */
  donePromise?: Promise<void>;
  doneResolve?: () => void;
}

function doneOf(t: Task): Promise<void> {
  if (!t.donePromise) t.donePromise = new Promise<void>((r) => (t.doneResolve = r));
  return t.donePromise;
}

export class TaskSet {
  private readonly active = new Set<Task>();
  /** The newest ORDERED task still running (later SIMPLE tasks wait for it). */
  private barrier: Task | undefined;

  begin(nexusId: string, tag: number, attr: TaskAttribute): Task {
    const t: Task = { nexusId, tag, attr, aborted: false };
    this.active.add(t);
    return t;
  }

  /** undefined: run now; otherwise a promise that resolves when the task may start. */
  turn(t: Task): Promise<unknown> | undefined {
    if (t.attr === TaskAttribute.HEAD_OF_QUEUE) return undefined;
    if (t.attr === TaskAttribute.ORDERED) {
      const earlier: Promise<void>[] = [];
      for (const o of this.active) {
        if (o === t) break;
        earlier.push(doneOf(o));
      }
      this.barrier = t;
      return earlier.length > 0 ? Promise.all(earlier) : undefined;
    }
    const b = this.barrier;
    return b && b !== t ? doneOf(b) : undefined;
  }

  end(t: Task): void {
    this.active.delete(t);
    if (this.barrier === t) this.barrier = undefined;
    t.doneResolve?.();
  }

  find(nexusId: string, tag: number): Task | undefined {
    for (const t of this.active) if (t.nexusId === nexusId && t.tag === tag && !t.aborted) return t;
    return undefined;
  }

  /** Tasks matching a filter (for ABORT TASK SET / CLEAR TASK SET / resets). */
  select(pred: (t: Task) => boolean): Task[] {
    const out: Task[] = [];
    for (const t of this.active) if (!t.aborted && pred(t)) out.push(t);
    return out;
  }

  get size(): number {
    return this.active.size;
  }
}
