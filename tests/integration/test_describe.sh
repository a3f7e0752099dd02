# sluice describe: every type's options from the loader's own rows, as
# tables and as JSON; plugins' types with --plugin-path; the README's config
# tables agree with it (readme_options.py).
. "$(dirname "$0")/lib.sh"
BUILD=$(dirname "$SLUICE")

"$SLUICE" describe > all.txt || fail "describe"
for t in file generator kafka filter map route delay throttle sqlite null; do
    grep -q "^$t (" all.txt || fail "type $t missing: $(head -20 all.txt)"
done
"$SLUICE" describe sqlite > one.txt || fail "describe sqlite"
[ "$(grep -c '^[a-z_]* (' one.txt)" = 1 ] || fail "one type: $(cat one.txt)"
grep -Eq '^  batch\.max_bytes +size +16MiB +1KiB\.\.1TiB +Bytes per write' one.txt || fail "row: $(cat one.txt)"
grep -Eq '^  mode +enum +insert +insert \| upsert ' one.txt || fail "enum row: $(cat one.txt)"
grep -Eq '^  path +string +required ' one.txt || fail "required row: $(cat one.txt)"

set +e
"$SLUICE" describe filter nope > out.txt 2> err.txt
rc=$?
set -e
[ $rc = 2 ] && [ ! -s out.txt ] && grep -q "unknown type 'nope'" err.txt || fail "unknown type: exit $rc: $(cat err.txt)"
set +e
"$SLUICE" describe --plugin-path nowhere > out.txt 2> err.txt
rc=$?
set -e
[ $rc = 2 ] && grep -q "cannot open plugin folder nowhere" err.txt || fail "no folder: exit $rc $(cat err.txt)"

"$SLUICE" describe --plugin-path "$BUILD/plugins" mask lookup > p.txt || fail "plugins"
grep -q "^mask (stage, plugin .*/mask.so): Masks" p.txt || fail "plugin named: $(cat p.txt)"
grep -Eq '^  on_miss +enum +keep +keep \| drop \| dead ' p.txt || fail "plugin row: $(cat p.txt)"

"$SLUICE" describe --json > d.json || fail "json"
python3 "$SLUICE_ROOT/tests/integration/readme_options.py" d.json "$SLUICE_ROOT/README.md" ||
    fail "README's config tables and describe disagree"
echo ok
