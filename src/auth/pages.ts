/** The sign-in, consent and error pages of the authorization endpoint: plain HTML, no scripts. */
import type { AuthorizeRequest } from './authorize-router.js';
import { escapeHtml as h } from './http-util.js';

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${h(title)} – CareBridge</title>
<style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem}label{display:block;margin:.8rem 0 .2rem}
input{width:100%;padding:.4rem;box-sizing:border-box}button{margin-top:1rem;padding:.5rem 1rem}.error{color:#a00}li{margin:.2rem 0}</style>
</head><body><h1>${h(title)}</h1>
${body}
</body></html>`;
}

const hidden = (params: Record<string, string>) =>
  Object.entries(params)
    .map(([k, v]) => `<input type="hidden" name="${h(k)}" value="${h(v)}">`)
    .join('\n');

export function loginPage(request: AuthorizeRequest, error?: string): string {
  return page(
    'Sign in',
    `<p><strong>${h(request.client.name)}</strong> asks to use your CareBridge account.</p>
${error ? `<p class="error" role="alert">${h(error)}</p>` : ''}
<form method="post">
${hidden(request.params)}
<input type="hidden" name="step" value="login">
<label for="username">Username</label><input id="username" name="username" autocomplete="username" required>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<label for="totp">One-time code (if your account has one)</label><input id="totp" name="totp" inputmode="numeric" autocomplete="one-time-code">
<button type="submit" id="sign-in">Sign in</button>
</form>`,
  );
}

export function consentPage(request: AuthorizeRequest, ticket: string, pickPatient: boolean, error?: string): string {
  return page(
    'Allow access?',
    `<p><strong>${h(request.client.name)}</strong> asks for:</p>
<ul>${request.scope.map((s) => `<li><code>${h(s)}</code></li>`).join('')}</ul>
${error ? `<p class="error" role="alert">${h(error)}</p>` : ''}
<form method="post">
<input type="hidden" name="step" value="consent">
<input type="hidden" name="ticket" value="${h(ticket)}">
${pickPatient ? '<label for="patient">Patient id</label><input id="patient" name="patient" required>' : ''}
<button type="submit" name="decision" value="allow" id="allow">Allow</button>
<button type="submit" name="decision" value="deny" id="deny" formnovalidate>Deny</button>
</form>`,
  );
}

export function errorPage(message: string): string {
  return page('Cannot sign in', `<p class="error">${h(message)}</p>`);
}
