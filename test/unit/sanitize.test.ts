// A failed query's parameters (employee ids, names, emails) never leave an activity.
import { DrizzleQueryError } from 'drizzle-orm/errors';
import { ApplicationFailure } from '@temporalio/activity';
import { describe, expect, it } from 'vitest';
import { SanitizingActivityInterceptor } from '../../activities/sanitize.js';

const run = (err: unknown) => new SanitizingActivityInterceptor().execute({} as never, async () => Promise.reject(err));

describe('activity errors', () => {
  it('drop the SQL and its parameters, keep the database error code', async () => {
    const cause = Object.assign(new Error('duplicate key value violates unique constraint "identities_employee_id_unique"'), { code: '23505' });
    const failed: Error = await run(new DrizzleQueryError('insert into identities (employee_id, attributes) values ($1, $2)', ['E1001', '{"email":"ada@example.com"}'], cause)).then(
      () => new Error('did not fail'),
      (e: unknown) => e as Error,
    );
    expect(failed).toBeInstanceOf(Error);
    expect(failed.message).toBe('database query failed (23505): duplicate key value violates unique constraint "identities_employee_id_unique"');
    expect(failed.message).not.toMatch(/E1001|ada@example.com|insert into/);
  });

  it('leave other failures as they are', async () => {
    const failure = ApplicationFailure.nonRetryable('no identity E1', 'NotFound');
    await expect(run(failure)).rejects.toBe(failure);
  });
});
