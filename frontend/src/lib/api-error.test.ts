import { describe, expect, it } from 'vitest';
import { ApiError, apiErrorFromBody, errorMessage } from './api-error';

describe('ApiError', () => {
  it('reads the one error shape, fields included', () => {
    const error = apiErrorFromBody(400, { error: { code: 'validation_error', message: 'password: too short', fields: { password: ['too short'], token: ['link expired'] } } });
    expect(error).toMatchObject({ status: 400, code: 'validation_error' });
    expect(error.field('password')).toBe('too short');
    expect(error.summary(['password'])).toBe('link expired');
    expect(error.summary(['password', 'token'])).toBeNull();
  });

  it('falls back to the status for bodies of another shape', () => {
    expect(apiErrorFromBody(502, '<html>bad gateway</html>')).toMatchObject({ status: 502, code: 'unknown' });
  });

  it('says when to retry after a rate limit', () => {
    expect(errorMessage(apiErrorFromBody(429, { error: { code: 'rate_limited', message: 'slow down' } }, '7'))).toBe('Too many attempts. Try again in 7 s.');
    expect(errorMessage(new ApiError(500, 'internal_error', 'db exploded'))).toBe('Something went wrong on the server. Try again.');
  });
});
