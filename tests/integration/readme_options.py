# The README's config tables (Sources, Stages, Sinks) against `sluice
# describe --json`: the same types, the same options, the same required
# ones and the same defaults where the README gives one in backticks.
# Usage: readme_options.py DESCRIBE.json README.md; prints each difference.
import json, re, sys
types = json.load(open(sys.argv[1]))
readme = open(sys.argv[2]).read()
kinds = {"Sources": "source", "Stages": "stage", "Sinks": "sink"}
doc = {}      # (kind, type) -> {key: required}
for title, kind in kinds.items():
    start = readme.index("**%s**" % title)
    end = min([readme.index("**%s**" % t, start + 1) for t in kinds if readme.find("**%s**" % t, start + 1) > 0] + [readme.index("\n### ", start)])
    cur = None
    for line in readme[start:end].splitlines():
        if not line.startswith("| ") or line.startswith("| type") or line.startswith("|---"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0]:
            cur = cells[0].strip("`")
            doc.setdefault((kind, cur), {})
        keys = re.findall(r"`([^`]+)`", cells[1]) if len(cells) > 1 else []
        req = "(required)" in cells[1] or (len(cells) > 3 and cells[2] == "required")
        dflt = None
        m = re.fullmatch(r"`([^`]*)`", cells[2]) if len(cells) > 3 else re.match(r"default `([^`]*)`", cells[-1])
        if m:
            dflt = m.group(1)
        for k in keys:
            doc[(kind, cur)][k] = (req, dflt)
errors = []
for t in types:
    if t["plugin"]:
        continue
    have = {o["key"]: o["required"] for o in t["options"] if o["supported"]}
    d = doc.get((t["kind"], t["name"]))
    if d is None:
        errors.append("%s %s: not in the README" % (t["kind"], t["name"]))
        continue
    d = dict(d)
    for k in list(d):
        if k.endswith(".*"):
            for h in have:
                if h.startswith(k[:-1]):
                    d[h] = d[k]
            del d[k]
    for k in sorted(set(have) - set(d)):
        errors.append("%s %s: option %s is not in the README" % (t["kind"], t["name"], k))
    for k in sorted(set(d) - set(have)):
        errors.append("%s %s: the README has %s, sluice has no such option" % (t["kind"], t["name"], k))
    dflts = {o["key"]: o["default"] for o in t["options"]}
    for k in sorted(set(d) & set(have)):
        if d[k][1] is not None and d[k][1] != dflts[k] and not k.startswith("batch."):
            errors.append("%s %s: %s defaults to %r, the README says %r" % (t["kind"], t["name"], k, dflts[k], d[k][1]))
        if d[k][0] != have[k]:
            errors.append("%s %s: %s is %srequired, the README says otherwise" % (t["kind"], t["name"], k, "" if have[k] else "not "))
for (kind, name) in doc:
    if not any(t["kind"] == kind and t["name"] == name for t in types):
        errors.append("README: %s %s is not a type of sluice" % (kind, name))
if errors:
    sys.exit("\n".join(errors))
