/** Seconds since the epoch at which a JWT expires, or null if it cannot be read. */
export function jwtExpiry(token: string): number | null {
  const payload = token.split('.')[1];
  if (!payload) return null;
  try {
    const base64 = payload.replace(/-/g, '+').replace(/_/g, '/');
    const padded = base64 + '='.repeat((4 - (base64.length % 4)) % 4);
    const claims: unknown = JSON.parse(atob(padded));
    if (typeof claims === 'object' && claims !== null && 'exp' in claims) {
      const exp = (claims as { exp: unknown }).exp;
      return typeof exp === 'number' ? exp : null;
    }
  } catch {
    // Not a JWT we can read: let the server decide.
  }
  return null;
}

/** Whether the token expires within `marginSeconds` (unknown expiry: no). */
export function expiresWithin(token: string, marginSeconds: number, now = Date.now()): boolean {
  const exp = jwtExpiry(token);
  return exp !== null && exp * 1000 - now < marginSeconds * 1000;
}
