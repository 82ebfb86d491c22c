// A real OpenID provider for the tests: node-oidc-provider (certified), on a loopback port.
//
//   node provider.mjs CONFIG.json
//
// CONFIG: {"port", "issuer", "clients": [client metadata], "accounts": {id: claims}}.
// The login is driven by the test over plain HTTP (or in a browser): the authorization request
// ends on /interaction/UID (a small HTML form), and a form POST to /interaction/UID/login with
// `account` (and optionally `amr`, comma-separated, `acr`, and `age`: the sign-in dated that
// many seconds ago, its auth_time) signs that account in (`deny` refuses instead); consent is
// granted with the login. What the next token answer looks like is set with a POST to
// /_test/next (JSON): {"tamper": "signature" | "audience" | "azp" | "rotated", "clock": SECONDS}
// (the provider's clock moved by SECONDS while it answers, so its token's iat and exp are then);
// it applies to one /token answer. POST /_test/rotate publishes a second key in the JWKS.
import { readFileSync } from 'node:fs';
import { generateKeyPair, exportJWK, importJWK, CompactSign } from 'jose';
import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));

async function signingKey(kid) {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  return { ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' };
}

const first = await signingKey('first');
const second = await signingKey('second');
let rotated = false;
let next = null; // how the next token answer is changed

const provider = new Provider(config.issuer, {
  clients: config.clients,
  jwks: { keys: [first] },
  findAccount: async (ctx, id) => {
    const claims = config.accounts[id];
    if (!claims) return undefined;
    return { accountId: id, claims: async () => ({ sub: id, ...claims }) };
  },
  claims: {
    openid: ['sub', 'acr', 'amr'], email: ['email', 'email_verified'], profile: ['name', 'groups'],
  },
  conformIdTokenClaims: false, // the scopes' claims in the ID token, as most providers do
  acrValues: ['urn:example:loa:1', 'urn:example:loa:mfa'],
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  pkce: { required: () => true },
  ttl: { IdToken: 600 },
});

function b64json(part) {
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
}

async function tampered(token, how) {
  const [head, body, signature] = token.split('.');
  const header = b64json(head);
  const payload = b64json(body);
  if (how === 'signature') {
    payload.email = 'mallory@example.com';
    const changed = Buffer.from(JSON.stringify(payload)).toString('base64url');
    return `${head}.${changed}.${signature}`;
  }
  let key = first;
  if (how === 'audience') payload.aud = 'another-client';
  if (how === 'nonce') payload.nonce = 'another sign-in';
  if (how === 'azp') {
    payload.aud = [payload.aud, 'another-client'];
    payload.azp = 'another-client';
  }
  if (how === 'rotated') {
    key = second;
    header.kid = second.kid;
  }
  return new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
    .setProtectedHeader(header)
    .sign(await importJWK(key, 'RS256'));
}

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

provider.use(async (ctx, proceed) => {
  if (ctx.path === '/_test/next' && ctx.method === 'POST') {
    next = JSON.parse(await readBody(ctx.req));
    ctx.body = { ok: true };
    return;
  }
  if (ctx.path === '/_test/rotate' && ctx.method === 'POST') {
    rotated = true;
    ctx.body = { ok: true };
    return;
  }
  if (ctx.path === '/jwks' && rotated) {
    const pub = ({ kty, n, e, kid, alg, use }) => ({ kty, n, e, kid, alg, use });
    ctx.body = { keys: [pub(first), pub(second)] };
    ctx.type = 'application/jwk-set+json';
    return;
  }
  const interaction = ctx.path.match(/^\/interaction\/([^/]+)(\/login)?$/);
  if (interaction) {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    if (!interaction[2]) {
      ctx.type = 'html';
      ctx.body = `<!doctype html><html lang="en"><title>Test provider: sign in</title>
<h1>Test provider</h1>
<form method="post" action="/interaction/${details.uid}/login">
<label>Account <input name="account" autocomplete="username"></label>
<label><input type="checkbox" name="amr" value="pwd,mfa"> Second factor done here</label>
<button>Sign in</button> <button name="deny" value="1">Refuse</button>
</form></html>`;
      return;
    }
    const form = new URLSearchParams(await readBody(ctx.req));
    const accountId = details.session?.accountId ?? form.get('account');
    const login = { accountId };
    if (form.get('amr')) login.amr = form.get('amr').split(',');
    if (form.get('acr')) login.acr = form.get('acr');
    if (form.get('age')) login.ts = Math.floor(Date.now() / 1000) - Number(form.get('age'));
    const grant = new provider.Grant({ accountId, clientId: details.params.client_id });
    grant.addOIDCScope(details.params.scope);
    const result = form.get('deny')
      ? { error: 'access_denied', error_description: 'the person said no' }
      : { login, consent: { grantId: await grant.save() } };
    await provider.interactionFinished(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
    ctx.respond = false;
    return;
  }
  if (ctx.path === '/token' && next !== null) {
    const change = next;
    next = null;
    const realNow = Date.now;
    if (change.clock) Date.now = () => realNow() + change.clock * 1000;
    try {
      await proceed();
    } finally {
      Date.now = realNow;
    }
    if (change.tamper && ctx.status === 200 && ctx.body && ctx.body.id_token) {
      ctx.body = { ...ctx.body, id_token: await tampered(ctx.body.id_token, change.tamper) };
    }
    return;
  }
  await proceed();
});

provider.listen(config.port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${config.issuer}`);
});
