import type { ErrorBody, ErrorCode } from '@/types/models';

/** Codes of the API contract, plus the ones the client itself produces. */
export type ClientErrorCode = ErrorCode | 'network_error' | 'unknown';

/** An error in the API's one shape (`{"error": {code, message, fields?}}`), or a network failure. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: ClientErrorCode;
  readonly fields: Record<string, string[]>;
  readonly retryAfter: number | null;

  constructor(
    status: number,
    code: ClientErrorCode,
    message: string,
    fields: Record<string, string[]> = {},
    retryAfter: number | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.fields = fields;
    this.retryAfter = retryAfter;
  }

  /** The message of one form field, if the server named it. */
  field(name: string): string | undefined {
    return this.fields[name]?.join(' ');
  }

  /**
   * A sentence for the messages a form cannot show next to an input: those of fields it does
   * not have (`token` of a reset link, say), without the "field: " prefix of `message`.
   */
  summary(shownFields: string[] = []): string | null {
    const rest = Object.entries(this.fields).filter(([name]) => !shownFields.includes(name));
    if (Object.keys(this.fields).length === 0) return this.message;
    if (rest.length === 0) return null;
    return rest.map(([, messages]) => messages.join(' ')).join(' ');
  }
}

function isErrorBody(value: unknown): value is ErrorBody {
  if (typeof value !== 'object' || value === null || !('error' in value)) return false;
  const error = (value as { error: unknown }).error;
  return typeof error === 'object' && error !== null && 'code' in error && 'message' in error;
}

/** Turns a parsed error body (or anything else a failed request produced) into an ApiError. */
export function apiErrorFromBody(status: number, body: unknown, retryAfter: string | null = null): ApiError {
  const seconds = retryAfter !== null && retryAfter !== '' ? Number(retryAfter) : NaN;
  const after = Number.isFinite(seconds) ? seconds : null;
  if (isErrorBody(body)) {
    const { code, message, fields } = body.error;
    return new ApiError(status, code, message, fields ?? {}, after);
  }
  return new ApiError(status, 'unknown', `The server answered ${status}.`, {}, after);
}

/** Reads a failed Response into an ApiError. */
export async function apiErrorFromResponse(response: Response): Promise<ApiError> {
  let body: unknown = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON (a proxy's error page, say): fall back to the status.
  }
  return apiErrorFromBody(response.status, body, response.headers.get('Retry-After'));
}

export function networkError(cause?: unknown): ApiError {
  const error = new ApiError(0, 'network_error', 'Cannot reach the server. Check your connection and try again.');
  if (cause !== undefined) (error as { cause?: unknown }).cause = cause;
  return error;
}

export function isApiError(error: unknown): error is ApiError {
  return error instanceof ApiError;
}

/** A sentence to show a person for any error. */
export function errorMessage(error: unknown): string {
  if (isApiError(error)) {
    if (error.code === 'rate_limited') {
      return error.retryAfter
        ? `Too many attempts. Try again in ${Math.ceil(error.retryAfter)} s.`
        : 'Too many attempts. Try again in a moment.';
    }
    if (error.code === 'internal_error' || error.status >= 500) {
      return error.code === 'ai_unavailable' ? error.message : 'Something went wrong on the server. Try again.';
    }
    return error.message;
  }
  if (error instanceof Error && error.name === 'AbortError') return 'Cancelled.';
  return 'Something went wrong. Try again.';
}
