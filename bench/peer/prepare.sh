#!/usr/bin/env bash
# CC_TOKEN for W4: a client_credentials token, as the peers introspect.
# USER_TOKEN for W3: user1 signs in through the HTML pages (CSRF token and cookies as a
# browser keeps them), approves consent, and the code is redeemed.
set -euo pipefail
base="http://127.0.0.1:${PORT:-30404}"
cb=http://localhost:8000/oauth/callback
jar="$(mktemp)"; trap 'rm -f "$jar"' EXIT
field() { sed -n "s/.*name=\"$1\" value=\"\([^\"]*\)\".*/\1/p" | head -1 | sed 's/&amp;/\&/g'; }
q="response_type=code&client_id=python_client%40clients&redirect_uri=http%3A%2F%2Flocalhost%3A8000%2Foauth%2Fcallback&scope=base&state=S"
csrf="$(curl -sS -c "$jar" -b "$jar" "$base/login" | field csrf)"
curl -sS -c "$jar" -b "$jar" -o /dev/null --data-urlencode "csrf=$csrf" \
  --data-urlencode username=user1 --data-urlencode password=1234567891 "$base/login"
page="$(curl -sS -c "$jar" -b "$jar" "$base/oauth/authorize?$q")"
# The consent form's CSRF token is bound to the new session: take it from that page.
request="$(field request <<<"$page")" csrf="$(field csrf <<<"$page")"
loc="$(curl -sS -c "$jar" -b "$jar" -o /dev/null -w '%{redirect_url}' --data-urlencode "csrf=$csrf" \
  --data-urlencode "request=$request" -d decision=approve "$base/oauth/authorize")"
code="$(sed -n 's/.*[?&]code=\([^&]*\).*/\1/p' <<<"$loc")"
[ -n "$code" ] || { echo "no code; location: $loc" >&2; exit 1; }
tok() { sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p'; }
echo "USER_TOKEN=$(curl -sS -u python_client@clients:dev_secret -d "grant_type=authorization_code&code=$code&redirect_uri=$cb" "$base/oauth/token" | tok)"
echo "CC_TOKEN=$(curl -sS -u python_client@clients:dev_secret -d 'grant_type=client_credentials&scope=base' "$base/oauth/token" | tok)"
