/**
 * The task clones running on this host, by attempt and index, so that their
 * job's task server can have one give away the back half of its range for a
 * clone elsewhere whose range ran dry (TaskSplitRequest, docs/jobs.md "Ranges").
 */
import { FlurryError, type TaskSplitReply, type TaskSplitRequest } from '@flurry/core';
import type { TaskFeed } from './task-feed.js';

const keyOf = (requestId: string, index: number): string => `${requestId}/${index}`;

export class TaskFeeds {
  private readonly feeds = new Map<string, TaskFeed>();

  add(feed: TaskFeed): void {
    this.feeds.set(keyOf(feed.requestId, feed.index), feed);
  }

  delete(feed: TaskFeed): void {
    const key = keyOf(feed.requestId, feed.index);
    if (this.feeds.get(key) === feed) this.feeds.delete(key);
  }

  split(req: TaskSplitRequest): TaskSplitReply {
    const feed = this.feeds.get(keyOf(req.requestId, req.index));
    if (!feed) throw new FlurryError('not_found', `no task clone ${req.index} of ${req.requestId} runs here`);
    return feed.split(req.lo);
  }
}
