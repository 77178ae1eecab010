/**
 * The dashboard's built-in pages: the login form, and a minimal status page used when no
 * dashboard build (`dist/dashboard`) exists. Scripts are separate files because the CSP
 * forbids inline code.
 */
// An inline icon (img-src allows data:), so browsers do not ask for a /favicon.ico that is not there.
const ICON = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 100 100'%3E%3Ctext y='.9em' font-size='90'%3E%F0%9F%94%8B%3C/text%3E%3C/svg%3E"
const page = (title: string, body: string, script: string) => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title><link rel="icon" href="${ICON}"><link rel="stylesheet" href="/builtin.css"></head>
<body><main>${body}</main><script src="${script}"></script></body></html>
`

export const LOGIN_HTML = page('MFC Monitoring - Sign in', `
<h1>MFC Monitoring Dashboard</h1>
<form id="login"><label>API token <input id="token" name="token" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button></form>
<p id="message" role="alert"></p>
<p class="hint">The token is in MFC_API_TOKEN, the api-token file in mfc's state directory, or in a cluster the shared database: <code>mfc api-token show</code> prints it.</p>`, '/login.js')

export const LOGIN_JS = `document.getElementById('login').addEventListener('submit', async (event) => {
  event.preventDefault()
  const message = document.getElementById('message')
  const response = await fetch('/login', {method: 'POST', headers: {'content-type': 'application/json'}, body: JSON.stringify({token: document.getElementById('token').value})})
  if (response.ok) { location.assign('/'); return }
  const body = await response.json().catch(() => ({}))
  message.textContent = (body.error && body.error.message) || ('Sign-in failed (' + response.status + ')')
})
`

export const INDEX_HTML = page('MFC Monitoring Dashboard', `
<h1>MFC Monitoring Dashboard</h1>
<p>No dashboard build was found; this is the built-in status page.</p>
<table id="services"><thead><tr><th>Service</th><th>State</th></tr></thead><tbody></tbody></table>
<p id="certificate"></p>
<form id="logout"><button type="submit">Sign out</button></form>`, '/app.js')

export const APP_JS = `async function refresh() {
  const health = await (await fetch('/health')).json()
  const rows = Object.entries(health.services).map(([name, state]) => '<tr><td>' + name + '</td><td>' + state + '</td></tr>')
  document.querySelector('#services tbody').innerHTML = rows.join('')
  document.getElementById('certificate').textContent = health.certificate ? 'Certificate: ' + health.certificate.days_left + ' days left' : ''
}
document.getElementById('logout').addEventListener('submit', async (event) => {
  event.preventDefault()
  const session = await (await fetch('/session')).json()
  await fetch('/logout', {method: 'POST', headers: {'x-csrf-token': session.csrf_token}})
  location.assign('/login')
})
refresh()
setInterval(refresh, 5000)
`

export const BUILTIN_CSS = `body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#222}
input,button{font:inherit;padding:.3rem .6rem}td,th{padding:.2rem 1rem .2rem 0;text-align:left}#message{color:#b00}.hint{color:#666;font-size:.9em}
`
