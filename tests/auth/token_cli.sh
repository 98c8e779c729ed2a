#!/bin/bash
# token_cli.sh SMAUGD - `smaugd token add|list|revoke` from the command
# line: the token is printed once and only its hash is stored; the file is
# 0600 whatever the umask; list never shows a hash in full; duplicate,
# bad names and bad roles are refused; a file open to group or others is
# refused with a message that says so, by the command and by smaugd;
# revoke keeps every other line; concurrent adds are all kept; no
# temporary file is left behind.
set -u
SMAUGD=$1
T=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
  rm -rf "$T"
}
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

F=$T/tokens
hash_of() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }

# add: one line on stdout, the token; the file holds its hash only.
umask 000
out=$("$SMAUGD" token add --tokens-file "$F" --name alice --role admin \
  2>"$T/err")
rc=$?
umask 022
[ $rc -eq 0 ] || fail "add exited $rc: $(cat "$T/err")"
[ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] || fail "add printed: $out"
[[ $out =~ ^smaug_[A-Za-z0-9_-]{43}$ ]] && ok "token format" ||
  fail "token format: $out"
grep -q "shown only this once" "$T/err" || fail "no once-only notice"
grep -qF "$out" "$T/err" && fail "token on stderr"
[ "$(stat -c %a "$F")" = 600 ] && ok "created 0600 under umask 000" ||
  fail "mode $(stat -c %a "$F")"
grep -qF "$out" "$F" && fail "the file holds the token in clear"
grep -q "^alice admin default sha256:$(hash_of "$out")\$" "$F" &&
  ok "the file holds the hash" || fail "no hash line: $(cat "$F")"
ALICE=$out

# The environment variable names the file too; the tenant is kept.
BOB=$(SMAUG_AUTH_TOKENS=$F "$SMAUGD" token add --name bob --role viewer \
  --tenant acme 2>/dev/null) || fail "add with SMAUG_AUTH_TOKENS"
grep -q "^bob viewer acme sha256:$(hash_of "$BOB")\$" "$F" ||
  fail "bob: $(cat "$F")"
[ "$ALICE" != "$BOB" ] || fail "the same token twice"

# list: names, roles, tenants and an 8-digit fingerprint, never more.
"$SMAUGD" token list --tokens-file "$F" >"$T/list" || fail "list"
grep -Eq '^alice +admin +default +sha256:[0-9a-f]{8}$' "$T/list" &&
  grep -Eq '^bob +viewer +acme +sha256:[0-9a-f]{8}$' "$T/list" &&
  ok "list" || fail "list: $(cat "$T/list")"
grep -Eq '[0-9a-f]{9}' "$T/list" && fail "list shows a hash in full"
grep -qF -e "$ALICE" -e "$BOB" "$T/list" && fail "list shows a token"

# Refusals: duplicate name, bad names, bad role, missing flags.
cp "$F" "$T/before"
expect() { # expect STATUS PATTERN CMD...: exit status and stderr text
  local want=$1 pat=$2
  shift 2
  "$@" >"$T/out" 2>"$T/err"
  local rc=$?
  if [ $rc -ne "$want" ] || ! grep -q -- "$pat" "$T/err" ||
    [ -s "$T/out" ]; then
    fail "$* -> $rc: $(cat "$T/out" "$T/err")"
  else
    ok "$* -> $rc"
  fi
}
expect 1 "already in" "$SMAUGD" token add --tokens-file "$F" --name bob \
  --role admin
expect 2 "does not match" "$SMAUGD" token add --tokens-file "$F" \
  --name "b b" --role admin
expect 2 "does not match" "$SMAUGD" token add --tokens-file "$F" \
  --name ../x --role admin
expect 2 "required" "$SMAUGD" token add --tokens-file "$F" --name "" \
  --role admin
expect 2 "invalid UTF-8" "$SMAUGD" token add --tokens-file "$F" \
  --name "$(printf 'n\xff')" --role admin
expect 2 "more than the limit of 128" "$SMAUGD" token add --tokens-file "$F" \
  --name "$(head -c 200 /dev/zero | tr '\0' n)" --role admin
expect 2 "does not match" "$SMAUGD" token add --tokens-file "$F" --name c \
  --role viewer --tenant "a/b"
expect 2 "admin, operator or viewer" "$SMAUGD" token add --tokens-file "$F" \
  --name c --role root
expect 2 "admin, operator or viewer" "$SMAUGD" token add --tokens-file "$F" \
  --name c
expect 2 "tokens-file" env -u SMAUG_AUTH_TOKENS "$SMAUGD" token list
expect 2 "unknown subcommand" "$SMAUGD" token show --tokens-file "$F"
expect 1 "no token named" "$SMAUGD" token revoke --tokens-file "$F" \
  --name carol
cmp -s "$F" "$T/before" && ok "refusals left the file alone" ||
  fail "a refusal changed the file"

# A file open to group or others: refused by every subcommand and smaugd.
for mode in 640 604 660; do
  chmod $mode "$F"
  expect 1 "readable or writable by group or others (mode 0$mode)" \
    "$SMAUGD" token list --tokens-file "$F"
  expect 1 "chmod 600" "$SMAUGD" token add --tokens-file "$F" --name c \
    --role viewer
  expect 1 "group or others" "$SMAUGD" token revoke --tokens-file "$F" \
    --name bob
done
# smaugd_refuses PATTERN ENV [FLAG...]: smaugd, with the environment
# assignment ENV, does not start and logs PATTERN.
smaugd_refuses() {
  local pat=$1 envs=$2
  shift 2
  env "$envs" "$SMAUGD" --listen 127.0.0.1:0 --data-dir "$T/data" "$@" \
    >"$T/d.log" 2>&1 &
  PIDS+=($!)
  wait $!
  local rc=$?
  [ $rc -ne 0 ] && grep -q "$pat" "$T/d.log" && ok "smaugd refuses: $pat" ||
    fail "smaugd started ($rc) with: $* $envs: $(cat "$T/d.log")"
}
smaugd_refuses "group or others" SMAUG_LOG_LEVEL=info --auth-tokens "$F"
chmod 600 "$F"
cmp -s "$F" "$T/before" || fail "a refused command changed the file"
printf 'x admin\n' >"$T/broken"
chmod 600 "$T/broken"
smaugd_refuses "broken line 1: too few fields" SMAUG_AUTH_TOKENS=$T/broken

# Concurrent adds: every one is kept (the flock), all hashes distinct.
for i in $(seq 1 12); do
  "$SMAUGD" token add --tokens-file "$F" --name "c$i" --role operator \
    >"$T/tok.$i" 2>/dev/null &
done
wait
n=$(grep -c '^c[0-9]* operator default sha256:' "$F")
[ "$n" -eq 12 ] && ok "12 concurrent adds kept" || fail "$n of 12 kept"
for i in $(seq 1 12); do
  grep -q "^c$i operator default sha256:$(hash_of "$(cat "$T/tok.$i")")\$" \
    "$F" || fail "c$i's hash"
done
[ "$(cut -d' ' -f4 "$F" | grep sha256 | sort -u | wc -l)" -eq 14 ] ||
  fail "hashes not distinct"

# revoke: that line goes, every other stays byte for byte.
"$SMAUGD" token revoke --tokens-file "$F" --name alice 2>"$T/err" ||
  fail "revoke: $(cat "$T/err")"
grep -q '^alice ' "$F" && fail "alice still there"
diff <(grep -v '^alice ' "$T/before") <(grep -v '^c[0-9]* ' "$F") >/dev/null &&
  ok "revoke kept the other lines" || fail "revoke: $(cat "$F")"
[ "$(stat -c %a "$F")" = 600 ] || fail "mode after revoke"
expect 1 "no token named alice" "$SMAUGD" token revoke --tokens-file "$F" \
  --name alice
# The name is free again, with a new token.
NEW=$("$SMAUGD" token add --tokens-file "$F" --name alice --role viewer \
  2>/dev/null) && [ "$NEW" != "$ALICE" ] && ok "re-added with a new token" ||
  fail "re-add"
ls -A "$T" | grep -q '\.tmp$' && fail "a temporary file was left"

echo "$fails failed"
[ $fails -eq 0 ]
