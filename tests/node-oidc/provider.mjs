// node-oidc-provider for doorward-client's interop tests (crates/doorward-client/tests/interop.rs).
// Listens on 127.0.0.1:<free port>, then prints one JSON line: {"issuer", "private_key_pem"}.
// Development interactions (any login name, any password) sign users in; the test drives them.
// One client per token-endpoint authentication method, all with the callback below.
import crypto from 'node:crypto';
import http from 'node:http';
import Provider from 'oidc-provider';

const callback = 'http://localhost:8000/oauth/callback';
const secret = 'rp-secret-0123456789-0123456789-0123456789'; // client_secret_jwt needs 32+ bytes

const signing = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingJwk = { ...signing.privateKey.export({ format: 'jwk' }), kid: 'op-rs256-1', use: 'sig', alg: 'RS256' };
const es = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const esJwk = { ...es.privateKey.export({ format: 'jwk' }), kid: 'op-es256-1', use: 'sig', alg: 'ES256' };
// The private_key_jwt client's key pair: the provider knows the public half, the test gets the PEM.
const rp = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const rpPublicJwk = { ...rp.publicKey.export({ format: 'jwk' }), kid: 'rp-es256', use: 'sig', alg: 'ES256' };

const base = {
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  redirect_uris: [callback],
  scope: 'openid profile email offline_access',
};
const clients = [
  { ...base, client_id: 'rp-basic', client_secret: secret, token_endpoint_auth_method: 'client_secret_basic' },
  { ...base, client_id: 'rp-post', client_secret: secret, token_endpoint_auth_method: 'client_secret_post' },
  { ...base, client_id: 'rp-jwt', client_secret: secret, token_endpoint_auth_method: 'client_secret_jwt' },
  { ...base, client_id: 'rp-pkjwt', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [rpPublicJwk] } },
  { ...base, client_id: 'rp-public', token_endpoint_auth_method: 'none' },
  { ...base, client_id: 'rp-es256', client_secret: secret, token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'ES256' },
  // `doorward login` (RFC 8252): a native public client whose loopback redirect URI matches
  // on any port (§7.3).
  { client_id: 'rp-cli', application_type: 'native', token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
    redirect_uris: ['http://127.0.0.1/callback'], scope: 'openid profile email offline_access' },
  // An axum application with doorward-client's sign-in routes: confidential, its loopback
  // redirect URI on any port (the test app listens on a free one).
  { client_id: 'rp-web', application_type: 'native', client_secret: secret,
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
    redirect_uris: ['http://127.0.0.1/callback/node'], scope: 'openid profile email offline_access' },
  // A device (RFC 8628): public, no redirect URI.
  { client_id: 'rp-device', token_endpoint_auth_method: 'none', response_types: [], redirect_uris: [],
    grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'],
    scope: 'openid profile email offline_access' },
];

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients,
    jwks: { keys: [signingJwk, esJwk] },
    cookies: { keys: ['interop-cookie-key-not-a-secret'] },
    scopes: ['openid', 'profile', 'email', 'offline_access'],
    claims: { openid: ['sub'], profile: ['name', 'preferred_username'], email: ['email', 'email_verified'] },
    findAccount: async (_ctx, sub) => ({
      accountId: sub,
      claims: async () => ({ sub, name: `User ${sub}`, preferred_username: sub, email: `${sub}@example.com`, email_verified: true }),
    }),
    features: {
      devInteractions: { enabled: true },
      userinfo: { enabled: true },
      revocation: { enabled: true },
      introspection: { enabled: true },
      deviceFlow: { enabled: true },
      // DPoP (RFC 9449) with server nonces required at the token endpoint and at userinfo:
      // doorward-client must retry with the nonce it is given (§8, §9).
      dPoP: { enabled: true, nonceSecret: crypto.randomBytes(32), requireNonce: () => true },
    },
    // A refresh token for every code grant of a client that may refresh (not only offline_access).
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: true,
    pkce: { required: () => true },
    ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, RefreshToken: 3600 },
  });
  provider.on('server_error', (_ctx, err) => console.error('server_error', err));
  server.on('request', provider.callback());
  console.log(JSON.stringify({ issuer, private_key_pem: rp.privateKey.export({ format: 'pem', type: 'pkcs8' }) }));
});
