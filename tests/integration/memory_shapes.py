"""Writes the pipelines the memory bound is checked on (test_memory_bound.sh,
bench/memory.sh): route20 (a route with 20 outputs, each into a map, all
into one SQLite sink), fan10 (a 10-way fan-out into 10 sinks), chain
(filter -> map -> SQLite) and diamond5 (a 5-way fan-out merged into one
sink). Usage: memory_shapes.py INPUT LIMIT OUTDIR"""
import os
import sys

src, limit, out = sys.argv[1], sys.argv[2], sys.argv[3]
head = f"engine: {{ memory_limit: {limit} }}\nsources:\n  orders: {{ type: file, path: {src} }}\n"


def write(name, body):
    with open(os.path.join(out, name + ".yaml"), "w") as f:
        f.write(head + body)


routes = "\n".join(f"      r{i}: 'id % 20 == {i}'" for i in range(20))
maps = "\n".join(f"  m{i}: {{ type: map, inputs: [split.r{i}], set: {{ k: '{i}' }} }}" for i in range(20))
write("route20", f"""stages:
  split:
    type: route
    inputs: [orders]
    routes:
{routes}
{maps}
sinks:
  db: {{ type: sqlite, inputs: [{", ".join(f"m{i}" for i in range(20))}], path: out/r.db, table: t }}
""")
stages = "\n".join(f"  m{i}: {{ type: map, inputs: [orders], set: {{ k: '{i}' }} }}" for i in range(10))
sinks = "\n".join(f"  s{i}: {{ type: null, inputs: [m{i}] }}" for i in range(10))
write("fan10", f"stages:\n{stages}\nsinks:\n{sinks}\n")
write("chain", """stages:
  paid: { type: filter, inputs: [orders], where: 'amount > 0' }
  cents: { type: map, inputs: [paid], set: { c: 'round(amount * 100)' } }
sinks:
  db: { type: sqlite, inputs: [cents], path: out/c.db, table: t }
""")
stages = "\n".join(f"  m{i}: {{ type: map, inputs: [orders], set: {{ k: '{i}' }} }}" for i in range(5))
write("diamond5", f"stages:\n{stages}\nsinks:\n  n: {{ type: null, inputs: [{', '.join(f'm{i}' for i in range(5))}] }}\n")
