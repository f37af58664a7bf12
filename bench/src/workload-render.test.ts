import { describe, expect, it } from 'vitest';
import { renderTasks } from './workload-render.js';

describe('render tasks', () => {
  it('the largest divisor of the height from 4 to 8 tasks a clone: every task the same rows', () => {
    expect(renderTasks(240, 12)).toBe(80);
    expect(renderTasks(240, 4)).toBe(30);
    expect(renderTasks(1080, 6)).toBe(45);
  });

  it('no divisor in range: 8 a clone, tasks differing by one row', () => {
    expect(renderTasks(241, 12)).toBe(96);
  });

  it('fewer rows than 4 tasks a clone: a row a task', () => {
    expect(renderTasks(20, 12)).toBe(20);
  });
});
