/** An unsigned JWT-shaped token that expires `inSeconds` from now (the client only reads `exp`). */
export function fakeJwt(inSeconds: number, id = Math.random().toString(36).slice(2)): string {
  const encode = (value: object) => btoa(JSON.stringify(value)).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
  return `${encode({ alg: 'HS256', typ: 'JWT' })}.${encode({ sub: '1', jti: id, exp: Math.floor(Date.now() / 1000) + inSeconds })}.signature`;
}

export function jsonResponse(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}
