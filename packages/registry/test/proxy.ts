import { randomBytes } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the proxy does with one request instead of forwarding it. */
export type FaultAction =
  | {
      kind: 'status';
      status: number;
      headers?: Record<string, string>;
      body?: string;
      /** Forward the request first (the registry acts on it), then answer this instead of the registry's answer. */
      forward?: boolean;
    }
  | { kind: 'drop'; afterBytes: number };

export interface BearerFront {
  user: string;
  password: string;
  /** Also accept this OAuth2 refresh token (docker config `identitytoken`). */
  refreshToken?: string;
}

export interface FaultProxy {
  /** `127.0.0.1:<port>`: use as the registry. */
  address: string;
  /** `METHOD path` of every request that reached the proxy, token requests included. */
  log: string[];
  /** Scopes asked for at the token endpoint. */
  tokenScopes: string[];
  close(): Promise<void>;
}

/**
 * A tiny HTTP proxy in front of the real registry for fault tests. `fault` may answer a request itself
 * (a status such as 500 or 429 with Retry-After, after reading the whole body) or cut the connection after
 * some body bytes; everything else is forwarded unchanged (Host included, so the registry's Location headers
 * point back at the proxy). With `bearer`, it also plays a token server: /v2/ requests need a token from
 * /token whose scope covers the request, as Docker Hub and most hosted registries do.
 */
export async function startFaultProxy(
  target: string,
  fault: (req: IncomingMessage) => FaultAction | undefined,
  bearer?: BearerFront,
): Promise<FaultProxy> {
  const [host, port] = target.split(':');
  const log: string[] = [];
  const tokenScopes: string[] = [];
  const tokens = new Map<string, string[]>();
  let address = '';

  const challenge = (res: ServerResponse, scope: string) => {
    res.writeHead(401, {
      'content-type': 'application/json',
      'www-authenticate': `Bearer realm="http://${address}/token",service="nabla-test",scope="${scope}"`,
    });
    res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
  };

  const issueToken = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', `http://${address}`);
    let scopes = url.searchParams.getAll('scope');
    let ok = false;
    if (req.method === 'POST') {
      const form = new URLSearchParams(await readBody(req));
      scopes = (form.get('scope') ?? '').split(' ').filter(Boolean);
      ok =
        form.get('grant_type') === 'refresh_token' &&
        !!bearer?.refreshToken &&
        form.get('refresh_token') === bearer.refreshToken;
    } else {
      const basic = Buffer.from(`${bearer?.user}:${bearer?.password}`).toString('base64');
      ok = req.headers.authorization === `Basic ${basic}`;
    }
    tokenScopes.push(...scopes);
    if (!ok) {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'bad credentials' }] }));
      return;
    }
    const token = randomBytes(16).toString('hex');
    tokens.set(token, scopes);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify(req.method === 'POST' ? { access_token: token, expires_in: 300 } : { token, expires_in: 300 }),
    );
  };

  const server = http.createServer(async (req, res) => {
    log.push(`${req.method} ${(req.url ?? '').split('?')[0]}`);
    if (bearer && req.url?.startsWith('/token')) return issueToken(req, res);
    if (bearer && req.url?.startsWith('/v2/')) {
      const repo = /^\/v2\/(.+?)\/(?:blobs|manifests|tags)\//.exec(req.url)?.[1];
      const need = repo
        ? `repository:${repo}:${req.method === 'GET' || req.method === 'HEAD' ? 'pull' : 'pull,push'}`
        : '';
      const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      const granted = token ? tokens.get(token) : undefined;
      const covers = (s: string) => {
        const [, r, actions] = /^repository:(.+):([a-z,]+)$/.exec(s) ?? [];
        return (
          r === repo &&
          need
            .split(':')
            .pop()
            ?.split(',')
            .every((a) => actions?.split(',').includes(a))
        );
      };
      if (!granted || (repo && !granted.some(covers))) return challenge(res, need || 'registry:catalog:*');
      delete req.headers.authorization;
    }
    const action = fault(req);
    if (action?.kind === 'status') {
      if (action.forward) {
        await new Promise<void>((resolve, reject) => {
          const up = http.request({
            host,
            port: Number(port),
            method: req.method,
            path: req.url,
            headers: req.headers,
          });
          up.on('response', (ur) => ur.resume().on('end', resolve));
          up.on('error', reject);
          req.pipe(up);
        });
      } else await readBody(req);
      res.writeHead(action.status, { 'content-type': 'application/json', ...action.headers });
      res.end(action.body ?? JSON.stringify({ errors: [{ code: 'UNKNOWN', message: `injected ${action.status}` }] }));
      return;
    }
    if (action?.kind === 'drop') {
      let seen = 0;
      req.on('data', (c: Buffer) => {
        seen += c.length;
        if (seen >= action.afterBytes) req.socket.destroy();
      });
      req.on('end', () => req.socket.destroy());
      return;
    }
    const up = http.request(
      { host, port: Number(port), method: req.method, path: req.url, headers: req.headers },
      (ur) => {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    address,
    log,
    tokenScopes,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
