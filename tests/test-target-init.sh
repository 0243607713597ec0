#!/usr/bin/env bash
# tidemark target init and tidemark tenant add|list|token (issue #4): the data directory,
# its certificates as the openssl CLI sees them, tokens that are shown once and stored
# nowhere in the clear, and one-line errors for bad input.
set -euo pipefail
source "$(dirname "$0")/functions.sh"

requires openssl python3 grep sha256sum "$TIDEMARK"

T() { "$TIDEMARK" "$@"; }
bad() { # what CMD...
    local what=$1 msg
    shift
    msg=$(expect_fail_oneline "$@")
    echo "ok: $what: $msg"
}
mode() { stat -c %a "$1"; }

d=$tmp/srv/tm   # the parent does not exist yet either
cfg=$d/target.toml

echo "== init"
out=$(T target init --data "$d" --listen 127.0.0.1:7443 --host tm.example.com \
        --host 10.0.0.5 --host ::1)
echo "$out"
for f in ca.key ca.crt server.key server.crt tenants.json target.toml; do
    [ -f "$d/$f" ] || fail "init did not create $f"
done
[ "$(mode "$d")" = 700 ] || fail "data directory mode $(mode "$d"), expected 700"
for f in ca.key server.key tenants.json; do
    [ "$(mode "$d/$f")" = 600 ] || fail "$f mode $(mode "$d/$f"), expected 600"
done
grep -qF "$cfg" <<<"$out" || fail "init does not say where the config is"
grep -qF "$d/ca.crt" <<<"$out" || fail "init does not say where ca.crt is"
grep -qF "tidemark tenant add NAME --config $cfg" <<<"$out" || fail "init: no next step"
grep -qF "tidemark target serve --config $cfg" <<<"$out" || fail "init: no serve step"
fp=$(openssl x509 -noout -fingerprint -sha256 -in "$d/ca.crt" | sed 's/^.*=//')
grep -qF "$fp" <<<"$out" || fail "init does not print the CA fingerprint $fp"
grep -qF "data = \"$d\"" "$cfg" || fail "target.toml lacks the data directory: $(cat "$cfg")"
grep -qF 'listen = "127.0.0.1:7443"' "$cfg" || fail "target.toml lacks --listen: $(cat "$cfg")"

echo "== the certificates, as openssl sees them"
openssl verify -CAfile "$d/ca.crt" "$d/server.crt" || fail "openssl verify"
openssl verify -x509_strict -purpose sslserver -CAfile "$d/ca.crt" "$d/server.crt" \
    || fail "openssl verify -x509_strict -purpose sslserver"
san=$(openssl x509 -noout -ext subjectAltName -in "$d/server.crt")
echo "$san"
grep -q 'DNS:tm.example.com' <<<"$san" || fail "SAN lacks DNS:tm.example.com"
grep -q 'IP Address:10.0.0.5' <<<"$san" || fail "SAN lacks IP 10.0.0.5"
grep -Eq 'IP Address:(0:0:0:0:0:0:0:1|::1)' <<<"$san" || fail "SAN lacks IP ::1"
! grep -q 'DNS:10.0.0.5\|DNS:::1' <<<"$san" || fail "an IP address went in as a DNS name"
openssl x509 -noout -ext extendedKeyUsage -in "$d/server.crt" | grep -q 'TLS Web Server' \
    || fail "server.crt lacks extendedKeyUsage serverAuth"
bc=$(openssl x509 -noout -ext basicConstraints,keyUsage -in "$d/ca.crt")
echo "$bc"
grep -q 'critical' <<<"$bc" && grep -q 'CA:TRUE' <<<"$bc" && grep -q 'Certificate Sign' <<<"$bc" \
    || fail "ca.crt: not a critical CA:TRUE with keyCertSign"
openssl x509 -noout -text -in "$d/server.crt" | grep -q 'prime256v1' || fail "server key is not P-256"
end=$(openssl x509 -noout -enddate -in "$d/ca.crt" | sed 's/^notAfter=//')
years=$(( ($(date -d "$end" +%s) - $(date +%s)) / 86400 / 365 ))
[ "$years" -ge 9 ] || fail "CA valid for $years years, expected 10"
openssl pkey -noout -in "$d/server.key" || fail "server.key does not load"

echo "== init --json with the default hosts"
d2=$tmp/t2
js=$(T target init --data "$d2" --json)
echo "$js"
[ "$(json_get 'j["config"]' <<<"$js")" = "$d2/target.toml" ] || fail "--json config: $js"
[ "$(json_get 'j["ca_sha256"]' <<<"$js")" = \
  "$(openssl x509 -noout -fingerprint -sha256 -in "$d2/ca.crt" | sed 's/^.*=//')" ] \
    || fail "--json ca_sha256: $js"
[ "$(json_get 'j["hosts"][:3]' <<<"$js")" = '["localhost", "127.0.0.1", "::1"]' ] \
    || fail "--json hosts: $js"
openssl x509 -noout -ext subjectAltName -in "$d2/server.crt" | grep -q 'DNS:localhost' \
    || fail "default hosts: no DNS:localhost"
openssl verify -CAfile "$d/ca.crt" "$d2/server.crt" >/dev/null 2>&1 \
    && fail "one target's certificate verifies against another's CA"
echo "ok: a different CA does not verify it"

echo "== tenants"
out=$(T tenant add acme --config "$cfg")
echo "${out%tmk_*}<token>"
acme1=$(tail -n1 <<<"$out")
[[ "$acme1" =~ ^tmk_[A-Za-z0-9_-]{43}$ ]] || fail "tenant add: bad token line: $acme1"
js=$(T tenant add beta --config "$cfg" --json)
[ "$(json_get 'j["tenant"]' <<<"$js")" = beta ] || fail "tenant add --json: tenant"
beta1=$(json_get 'j["token"]' <<<"$js")
[[ "$beta1" =~ ^tmk_[A-Za-z0-9_-]{43}$ ]] || fail "tenant add --json: bad token"
T tenant list --config "$cfg"
T tenant list --config "$cfg" | grep -q '^  acme ' || fail "tenant list lacks acme"
js=$(T tenant list --config "$cfg" --json)
[ "$(json_get '[t["name"] for t in j["tenants"]]' <<<"$js")" = '["acme", "beta"]' ] \
    || fail "tenant list --json: $js"
json_get 'j["tenants"][0]["created"]' <<<"$js" | grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T.*Z$' \
    || fail "tenant list --json: created is not RFC 3339: $js"

acme2=$(T tenant token acme --config "$cfg" | grep '^tmk_')
[[ "$acme2" =~ ^tmk_[A-Za-z0-9_-]{43}$ ]] && [ "$acme2" != "$acme1" ] \
    || fail "tenant token: no new token"
acme3=$(T tenant token acme --config "$cfg" --json | json_get 'j["token"]')
[[ "$acme3" =~ ^tmk_ ]] && [ "$acme3" != "$acme2" ] || fail "tenant token --json: no new token"

# tenants.json holds the SHA-256 of the current tokens only.
python3 - "$d/tenants.json" "$acme3" "$beta1" "$acme1" "$acme2" <<'EOF' || fail "tenants.json hashes"
import hashlib, json, sys
t = {e["name"]: e["token_sha256"] for e in json.load(open(sys.argv[1]))["tenants"]}
h = lambda s: hashlib.sha256(s.encode()).hexdigest()
assert t == {"acme": h(sys.argv[2]), "beta": h(sys.argv[3])}, t
assert h(sys.argv[4]) not in t.values() and h(sys.argv[5]) not in t.values()
EOF
for tok in "$acme1" "$acme2" "$acme3" "$beta1"; do
    if grep -rqF -- "${tok#tmk_}" "$d"; then fail "a token is stored in $(grep -rlF -- "${tok#tmk_}" "$d")"; fi
done
echo "ok: no token appears in any file under the data directory"

echo "== refusals and bad input: one line on stderr, non-zero exit"
sums=$(cd "$d" && sha256sum ca.key ca.crt server.key server.crt target.toml tenants.json)
bad "second init"               T target init --data "$d"
bad "second init --json"        T target init --data "$d" --json
python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["error"]["message"]' \
    "$tmp/last-stdout" || fail "--json error object: $(cat "$tmp/last-stdout")"
[ "$(cd "$d" && sha256sum ca.key ca.crt server.key server.crt target.toml tenants.json)" = "$sums" ] \
    || fail "a refused init changed the data directory"
mkdir "$tmp/half" && echo precious >"$tmp/half/ca.key"
bad "init over an existing ca.key" T target init --data "$tmp/half"
[ "$(cat "$tmp/half/ca.key")" = precious ] && [ ! -e "$tmp/half/target.toml" ] \
    || fail "init replaced an existing key"
bad "init: bad --listen"        T target init --data "$tmp/t3" --listen nowhere
bad "init: port out of range"   T target init --data "$tmp/t3" --listen 0.0.0.0:70000
[ ! -e "$tmp/t3" ] || fail "a refused init created its directory"
bad "init: bad --host"          T target init --data "$tmp/t4" --host 'a b'
[ ! -e "$tmp/t4/target.toml" ] || fail "init with a bad host wrote target.toml"
bad "init: no --data"           T target init
bad "target: no subcommand"     T target
bad "tenant: no subcommand"     T tenant
bad "tenant add: bad name"      T tenant add 'bad name' --config "$cfg"
bad "tenant add: leading dot"   T tenant add .hidden --config "$cfg"
bad "tenant add: too long"      T tenant add "$(printf 'a%.0s' {1..65})" --config "$cfg"
bad "tenant add: slash"         T tenant add a/b --config "$cfg" --json
bad "tenant add: duplicate"     T tenant add acme --config "$cfg"
bad "tenant add: no name"       T tenant add --config "$cfg"
bad "tenant token: unknown"     T tenant token nobody --config "$cfg"
bad "tenant token: unknown --json" T tenant token nobody --config "$cfg" --json
python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["error"]["code"] == "not_found"' \
    "$tmp/last-stdout" || fail "tenant token unknown --json: $(cat "$tmp/last-stdout")"
bad "tenant list: missing config" T tenant list --config "$tmp/nope.toml"
bad "tenant add: missing config"  T tenant add x --config "$tmp/nope.toml"
bad "tenant list: no --config"  T tenant list
printf '[target]\ndata = "%s"\nlisten_on = "x"\n' "$d" >"$tmp/typo.toml"
msg=$(expect_fail_oneline T tenant list --config "$tmp/typo.toml")
grep -q 'target.listen_on' <<<"$msg" || fail "unknown key not named: $msg"
echo "ok: unknown config key: $msg"
printf '[target]\ndata = "%s"\n[ingest]\ngroup_commit_ms = "2"\n' "$d" >"$tmp/type.toml"
msg=$(expect_fail_oneline T tenant list --config "$tmp/type.toml")
grep -q 'ingest.group_commit_ms' <<<"$msg" || fail "wrong type not named: $msg"
echo "ok: wrong type: $msg"
echo '{"format": 1, "tenants": [' >"$tmp/t2/tenants.json"
bad "corrupted tenants.json"    T tenant list --config "$d2/target.toml"
[ "$(T tenant list --config "$cfg" --json | json_get 'len(j["tenants"])')" = 2 ] \
    || fail "the refusals changed the tenants"

echo "== --help"
for c in target "target init" tenant "tenant add" "tenant list" "tenant token"; do
    # shellcheck disable=SC2086
    T $c --help >"$tmp/help.txt" || fail "tidemark $c --help: exit $?"
    [ -s "$tmp/help.txt" ] || fail "tidemark $c --help printed nothing"
done
echo "ok: --help"

echo "test-target-init: OK"
