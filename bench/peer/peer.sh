# Peer spec (sourced by the kit's run-peers.sh): Doorward, as bench/run.sh installs it.
# Not the kit's 50404: that lies in Linux's ephemeral range (32768-60999), where a load tool's
# outgoing connection to another peer can hold it just when Doorward starts (seen: `Address
# already in use` after the Authlib run).
PEER_PORT=30404
PEER_READY_PATH=/api/v1/auth/self
DW_CLIENT=python_client@clients
DW_SECRET=dev_secret
DW_REDIRECT_URI=http://localhost:8000/oauth/callback
peer_version() { echo "doorward $("$DOORWARD_BIN" --version | cut -d' ' -f2) (release, SQLite WAL)"; }
peer_needs_prepare() { [ "$1" = W3 ] || [ "$1" = W4 ]; }
peer_workload() {
  local basic_auth; basic_auth="$(basic "$DW_CLIENT:$DW_SECRET")"
  case "$1" in
    W1) REQ_METHOD=POST REQ_PATH=/oauth/token REQ_CTYPE=application/x-www-form-urlencoded
        REQ_AUTH="$basic_auth" REQ_BODY='grant_type=client_credentials&scope=base' ;;
    W2) REQ_METHOD=POST REQ_PATH=/oauth/token REQ_CTYPE=application/x-www-form-urlencoded
        REQ_AUTH="$basic_auth" REQ_BODY= ;;
    W3) REQ_METHOD=GET REQ_PATH=/api/v1/auth/self REQ_CTYPE= REQ_AUTH="Bearer $USER_TOKEN" REQ_BODY= ;;
    # Like the peers, W4 introspects a client_credentials token.
    W4) REQ_METHOD=POST REQ_PATH=/oauth/introspect REQ_CTYPE=application/x-www-form-urlencoded
        REQ_AUTH="$basic_auth" REQ_BODY="token=$CC_TOKEN" ;;
    *) echo "unknown workload $1"; return 1 ;;
  esac
}
# W2: fresh single-use codes before each run, minted into the server's database.
peer_before_run() {
  [ "$1" = W2 ] || return 0
  local f="$BENCH_TMP/doorward-codes.txt" ru
  ru="$(printf '%s' "$DW_REDIRECT_URI" | sed 's|:|%3A|g; s|/|%2F|g')"
  "$DOORWARD_BIN" dev mint-codes --config "$DOORWARD_BENCH_CONFIG" \
    --database "sqlite:$BENCH_TMP/doorward-bench.sqlite" "$2" 2>/dev/null \
    | sed "s|.*|grant_type=authorization_code\&code=&\&redirect_uri=$ru|" > "$f"
  REQ_BODY_FILE="$f"
}
