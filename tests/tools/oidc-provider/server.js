// An independent, OpenID-certified provider (panva/node-oidc-provider) on loopback for
// the sign-in tests of core/auth. It is a test tool, never shipped.
//
// Usage: node server.js [--port N] [--client-id ID] [--access-ttl S] [--refresh-ttl S]
// Prints one JSON line {"issuer": ..., "kid": ...} on stdout once it listens, and exits
// when stdin closes (so it never outlives the test process) or on SIGTERM/SIGINT.
//
// The client is a native app as RFC 8252 describes it: application_type "native", no client
// secret (token_endpoint_auth_method "none", PKCE required), a loopback redirect on any
// port, the device authorization grant and rotating refresh tokens. devInteractions serves
// plain HTML login and consent forms an HTTP client can post, as a browser would.
//
// Everything else is oidc-provider's DEFAULT policy, as a customer's provider would run it:
// a refresh token only for a granted `offline_access` scope (which, in the browser flow,
// the provider grants only with `prompt=consent`, OIDC Core §11), and the scope claims
// (email, name) in the userinfo answer rather than in the ID token. A test-only policy here
// would hide exactly the bugs a real provider shows.
//
// The admin console (controller/console) is a confidential web client: with --web-client,
// --web-secret and --web-redirect the provider also registers it (client_secret_basic,
// that one redirect URI) and offers a `groups` scope. Accounts whose id starts with
// "admin" are in `rustronaut-admins`, the others in `staff`. As with any provider at
// default settings, the groups claim is returned by userinfo, not in the ID token.
//
// Test-only recording: GET /test/revocations lists the tokens revoked at this provider
// (successful RFC 7009 requests), so a test can tell where a logout revoked them.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

const { values: opts } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    'client-id': { type: 'string', default: 'rustronaut-test' },
    'access-ttl': { type: 'string', default: '3600' },
    'refresh-ttl': { type: 'string', default: '86400' },
    'id-ttl': { type: 'string', default: '3600' },
    'web-client': { type: 'string', default: '' },
    'web-secret': { type: 'string', default: '' },
    'web-redirect': { type: 'string', default: '' },
  },
});

const port = Number(opts.port);
const kid = `k-${randomBytes(6).toString('hex')}`;
// A fresh signing key per start: restarting on the same port is how the tests rotate keys.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid, use: 'sig', alg: 'RS256' };

const accounts = (id) => ({
  accountId: id,
  async claims() {
    return {
      sub: id,
      email: `${id}@example.test`,
      email_verified: true,
      name: `Test User ${id}`,
      preferred_username: id,
      ...(opts['web-client'] ? { groups: [id.startsWith('admin') ? 'rustronaut-admins' : 'staff'] } : {}),
    };
  },
});

function configuration(issuer) {
  return {
    clients: [
      {
        client_id: opts['client-id'],
        client_name: 'Rustronaut (test)',
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        redirect_uris: ['http://127.0.0.1/callback'],
        grant_types: [
          'authorization_code',
          'refresh_token',
          'urn:ietf:params:oauth:grant-type:device_code',
        ],
        response_types: ['code'],
      },
      ...(opts['web-client']
        ? [
            {
              client_id: opts['web-client'],
              client_secret: opts['web-secret'],
              client_name: 'Rustronaut admin console (test)',
              application_type: 'web',
              token_endpoint_auth_method: 'client_secret_basic',
              redirect_uris: [opts['web-redirect']],
              grant_types: ['authorization_code'],
              response_types: ['code'],
            },
          ]
        : []),
    ],
    jwks: { keys: [jwk] },
    cookies: { keys: [randomBytes(16).toString('hex')] },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username'],
      ...(opts['web-client'] ? { groups: ['groups'] } : {}),
    },
    findAccount: async (_ctx, id) => accounts(id),
    features: {
      devInteractions: { enabled: true },
      deviceFlow: { enabled: true },
      revocation: { enabled: true },
      introspection: { enabled: true },
    },
    ttl: {
      AccessToken: Number(opts['access-ttl']),
      IdToken: Number(opts['id-ttl']),
      RefreshToken: Number(opts['refresh-ttl']),
      DeviceCode: 600,
      Interaction: 600,
      Session: 3600,
      Grant: 86400,
    },
    pkce: { required: () => true },
    renderError(ctx, out) {
      ctx.type = 'json';
      ctx.body = out;
    },
  };
}

// Bind first so the issuer carries the real port, then create the provider.
const { createServer } = await import('node:http');
const server = createServer();
await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;
const provider = new Provider(issuer, configuration(issuer));

const revocations = [];
provider.use(async (ctx, next) => {
  if (ctx.method === 'GET' && ctx.path === '/test/revocations') {
    ctx.type = 'json';
    ctx.body = revocations;
    return;
  }
  await next();
  if (ctx.path === '/token/revocation' && ctx.status === 200 && ctx.oidc?.params?.token) {
    revocations.push({
      token: ctx.oidc.params.token,
      token_type_hint: ctx.oidc.params.token_type_hint ?? null,
    });
  }
});
server.on('request', provider.callback());

process.stdout.write(`${JSON.stringify({ issuer, kid })}\n`);

function stop() {
  server.closeAllConnections();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 500).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.resume();
