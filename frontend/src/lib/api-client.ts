import createClient from 'openapi-fetch';
import type { paths } from '@/types/api';
import { apiErrorFromBody, isApiError, networkError } from './api-error';
import { createSession } from './session';
import { TokenStore } from './token-store';

/** The one origin of the SPA, the API and the WebSocket (chat-api serves all three). */
export const apiOrigin = window.location.origin;

export const tokenStore = new TokenStore(window.localStorage);

export const session = createSession({ store: tokenStore, baseUrl: apiOrigin });

/** The typed client for every documented route (types generated from ../openapi.yaml). */
export const api = createClient<paths>({
  baseUrl: apiOrigin,
  fetch: (request: Request) => session.authFetch(request),
});

type Result<T> = { data?: T; error?: unknown; response: Response };

/** Awaits an openapi-fetch call: its data on success, an ApiError otherwise. */
export async function unwrap<T>(call: Promise<Result<T>>): Promise<T> {
  let result: Result<T>;
  try {
    result = await call;
  } catch (error) {
    if (isApiError(error)) throw error;
    if (error instanceof Error && error.name === 'AbortError') throw error;
    throw networkError(error);
  }
  if (result.response.ok) return result.data as T;
  throw apiErrorFromBody(result.response.status, result.error, result.response.headers.get('Retry-After'));
}
