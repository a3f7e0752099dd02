#!/usr/bin/env python3
"""Randomized DAG test for sluice (stdlib only).

For each seed: generate JSON-lines input (orders with a unique id, plus bad
lines that must become dead letters) and a random pipeline (file sources,
filter / map / route stages, SQLite sinks, an optional dead-letter sink) with
fan-out, fan-in, diamonds, several sinks on one table and on different
files; random engine.threads (1..16), queue (1..16), workers,
memory_limit and priorities (an int on some nodes, an if() on the data's
fields on others: they change the order of the writes, never the rows). Run `sluice run` and kill -9 it at random moments, then run it
to completion, and compare every table with an independent model of what it
must hold: exact rows, no loss, no duplicate. Then run once more: a replay
must write nothing. Peak RSS (/usr/bin/time %M) must stay within
memory_limit + 16 MiB; that check fails with its own message.

    python3 tests/integration/random_dag.py --seed 7            # one seed
    python3 tests/integration/random_dag.py --seeds 1-50        # a range
    python3 tests/integration/random_dag.py --seed 7 --motifs diamond --size 1

On failure it prints the seed, the pipeline and the first differing rows,
and keeps the work directory. Exit status: 0 all passed, 1 a failure.
"""

import argparse
import collections
import glob
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

MIB = 1 << 20
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RSS_SLACK_KIB = 16 * 1024

# ==== Expressions: the text sluice compiles, and our own evaluation ====


class EvalError(Exception):
    """The expression fails on this record: sluice must dead-letter it."""


def _num(v):
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise EvalError("operand of the wrong type")
    return v


def _mul(a, k):
    a = _num(a)
    return None if a is None else a * k


def _add(a, k):
    a = _num(a)
    return None if a is None else a + k


def _gt(a, k):
    a = _num(a)
    return False if a is None else a > k


def _to_int(v):
    if v is None:
        return None
    if isinstance(v, bool):
        raise EvalError("to_int of a bool")
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return int(v)
    try:
        return int(v, 10)
    except ValueError:
        raise EvalError("to_int: cannot parse") from None


def _mod(a, m):
    a = _num(a)
    if a is None:
        return None
    if not isinstance(a, int):
        raise EvalError("% of a double")
    # C semantics (truncation); ids are positive anyway.
    return a - m * int(a / m)


class Expr:
    def __init__(self, text, fn):
        self.text = text
        self.fn = fn

    def __call__(self, rec, line):
        return self.fn(rec, line)


def condition(rng, for_filter):
    """A random boolean condition. Some fail on bad records (qty "many",
    code "x1"); `flag` as a filter is not always a bool."""
    kinds = ["amount", "country_in", "country_ne", "id_mod", "qty", "code", "and"]
    if for_filter:
        kinds += ["flag"]
    k = rng.choice(kinds)
    if k == "amount":
        c = rng.randrange(50, 950)
        return Expr("amount > %d" % c, lambda r, l: _gt(r.get("amount"), c))
    if k == "country_in":
        cs = rng.sample(COUNTRIES, 2)
        return Expr('country in ["%s", "%s"]' % tuple(cs), lambda r, l: r.get("country") in cs)
    if k == "country_ne":
        c = rng.choice(COUNTRIES)
        return Expr('country != "%s"' % c, lambda r, l: r.get("country") != c)
    if k == "id_mod":
        m = rng.randrange(2, 6)
        x = rng.randrange(m)
        return Expr("id %% %d == %d" % (m, x), lambda r, l: _mod(r.get("id"), m) == x)
    if k == "qty":
        c = rng.randrange(0, 16)
        return Expr("qty * 2 > %d" % c, lambda r, l: _gt(_mul(r.get("qty"), 2), c))
    if k == "code":
        c = rng.randrange(0, 999)
        return Expr("to_int(code) > %d" % c, lambda r, l: _gt(_to_int(r.get("code")), c))
    if k == "and":
        c = rng.randrange(100, 900)
        x = rng.choice(COUNTRIES)

        def fn(r, l):
            a = _gt(r.get("amount"), c)
            return a and r.get("country") != x

        return Expr('amount > %d && country != "%s"' % (c, x), fn)
    # flag: true keeps, false / null drop, "yes" is a dead letter.
    return Expr("flag", lambda r, l: r.get("flag"))


def map_sets(rng, name):
    """A map's `set:` (ordered): always a path tag, then a few computed
    fields. Some fail on bad records."""
    sets = [("path", Expr('concat(path, "/%s")' % name,
                          lambda r, l: (r.get("path") or "") + "/" + name))]
    pool = [
        ("q3", Expr("qty * 3", lambda r, l: _mul(r.get("qty"), 3))),
        ("cents", Expr("amount * 100", lambda r, l: _mul(r.get("amount"), 100))),
        ("cc", Expr("lower(country)", lambda r, l: r["country"].lower())),
        ("k", Expr("to_int(code) + 1", lambda r, l: _add(_to_int(r.get("code")), 1))),
        ("ln", Expr("@line", lambda r, l: l)),
        ("hi", Expr("amount > 500", lambda r, l: _gt(r.get("amount"), 500))),
        ("q4", Expr("q3 + 1", lambda r, l: _add(r.get("q3"), 1))),
    ]
    for f, e in rng.sample(pool, rng.randrange(0, 4)):
        sets.append((f, e))
    return sets


def priority(rng, node):
    """A random priority for node: (YAML value, the levels it may give).
    An int 0..9, or (not on a route, which sends a record to several
    outputs) an expression on fields every record has, that never fails:
    if() with literal levels, null (level 0) or a computed value (any
    level), on the data or on @priority (the level the batch has so far).
    Two equal branches make one level: the loader takes it as an int."""
    if node.kind == "route" or rng.random() < 0.4:
        v = rng.randrange(0, 10)
        return str(v), {v}
    a, b, c = rng.randrange(0, 10), rng.randrange(0, 10), rng.randrange(0, 10)
    k = rng.choice(["amount", "country", "id_mod", "nested", "null", "computed", "level"])
    if k == "amount":
        return "'if(amount > %d, %d, %d)'" % (rng.randrange(50, 950), a, b), {a, b}
    if k == "country":
        return "'if(country == \"%s\", %d, %d)'" % (rng.choice(COUNTRIES), a, b), {a, b}
    if k == "id_mod":
        m = rng.randrange(2, 6)
        return "'if(id %% %d == %d, %d, %d)'" % (m, rng.randrange(m), a, b), {a, b}
    if k == "nested":
        return "'if(amount > %d, %d, if(country in [\"%s\", \"%s\"], %d, %d))'" % (
            rng.randrange(50, 950), a, *rng.sample(COUNTRIES, 2), b, c), {a, b, c}
    if k == "level":  # the level the batch has so far
        return "'if(@priority > %d, %d, %d)'" % (rng.randrange(0, 9), a, b), {a, b}
    if k == "null":
        return "'if(amount > %d, %d, null)'" % (rng.randrange(50, 950), a), {a, 0}
    return rng.choice(["'id % 10'", "'id % 3 + 6'"]), set(range(10))


COUNTRIES = ["DE", "FR", "US", "BR", "JP", "IN"]
BASE_FIELDS = ["id", "path", "amount", "qty", "code", "flag", "country"]

# ==== Input data ====


def gen_record(rng, oid):
    r = {"id": oid}
    if rng.random() < 0.8:
        r["amount"] = rng.randrange(0, 1000)
    else:
        r["amount"] = rng.randrange(0, 4000) / 4.0  # exact in binary
    x = rng.random()
    if x < 0.01:
        r["qty"] = "many"  # fails `qty * k`
    elif x < 0.1:
        pass  # missing: null in expressions
    else:
        r["qty"] = rng.randrange(0, 10)
    x = rng.random()
    r["flag"] = True if x < 0.47 else False if x < 0.94 else None if x < 0.99 else "yes"
    if r["flag"] is None:
        del r["flag"]
    r["country"] = rng.choice(COUNTRIES)
    r["code"] = "x1" if rng.random() < 0.01 else str(rng.randrange(0, 1000))
    if rng.random() < 0.2:
        r["note"] = "n%d" % rng.randrange(100)
    if rng.random() < 0.2:
        r["price"] = rng.randrange(0, 400) / 4.0
    return r


BAD_LINES = ['{"id": 1, bad json', "[1, 2, 3]", '"just a string"', '{"id": 5,}',
             '{"a": 1} trailing', "{bad"]


def gen_file(rng, path, nrec, next_id):
    """Writes one JSON-lines file; returns (lines, next_id) where lines is a
    list of (line_no, record or None for a bad line)."""
    lines = []
    out = []
    ln = 0
    while len(lines) < nrec:
        ln += 1
        x = rng.random()
        if x < 0.005:
            out.append(rng.choice(["", "   "]))  # skipped, but counted by @line
            continue
        if x < 0.015:
            out.append(rng.choice(BAD_LINES))
            lines.append((ln, None))
            continue
        r = gen_record(rng, next_id)
        next_id += 1
        out.append(json.dumps(r))
        lines.append((ln, r))
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    return lines, next_id


# ==== The pipeline ====


class Node:
    def __init__(self, name, kind):
        self.name = name
        self.kind = kind  # source filter map route sink
        self.inputs = []  # tap names
        self.opts = {}  # extra YAML (queue, workers, batch)
        self.outputs = [name]  # tap names: the node, then routes, then _unmatched
        self.cond = None  # filter
        self.sets = []  # map
        self.rename = {}
        self.drop = []
        self.keep = None
        self.routes = []  # route: (name, Expr)
        self.glob = None  # source
        self.db = None  # sink
        self.table = None
        self.levels = None  # priority: the levels it may give (None: inherits)


MOTIFS = ["chain", "fanout", "route", "diamond", "full_diamonds", "fanin", "same_table",
          "twin_sources", "direct"]


class Pipeline:
    def __init__(self, rng, args, files):
        self.rng = rng
        self.nodes = []
        self.by_name = {}
        self.tap_owner = {}  # tap -> (node, output index)
        self.counter = collections.Counter()
        self.files = files  # glob -> list of paths
        self.dbs = ["out/a.db", "out/b.db", "out/c.db"][: rng.randrange(1, 4)]
        self.tables = ["orders", "orders2", "wide"][: rng.randrange(1, 4)]
        self.threads = rng.randrange(1, 17)
        self.memory_limit = rng.choice([1, 2, 4, 8, 16, 32, 64]) * MIB
        self.distinct_tables = args.distinct_tables
        self.build(args)

    # -- construction --

    def new(self, prefix, kind):
        self.counter[prefix] += 1
        n = Node("%s%d" % (prefix, self.counter[prefix]), kind)
        self.nodes.append(n)
        self.by_name[n.name] = n
        self.tap_owner[n.name] = (n, 0)
        rng = self.rng
        if kind != "source" and rng.random() < 0.7:
            n.opts["queue"] = rng.randrange(1, 17)
        if kind in ("filter", "map", "route") and rng.random() < 0.5:
            n.opts["workers"] = rng.randrange(1, 5)
        return n

    def consumers(self, tap):
        return [n for n in self.nodes if tap in n.inputs]

    def taps(self):
        return list(self.tap_owner)

    def pick_tap(self, exclude=()):
        taps = [t for t in self.taps() if t not in exclude
                and self.tap_owner[t][0].kind != "sink"]
        # Prefer taps nobody reads yet, so that shapes grow deep.
        free = [t for t in taps if not self.consumers(t)]
        if free and self.rng.random() < 0.7:
            return self.rng.choice(free)
        return self.rng.choice(taps) if taps else None

    def add_filter(self, tap):
        n = self.new("f", "filter")
        n.inputs = [tap]
        n.cond = condition(self.rng, True)
        return n

    def add_map(self, taps):
        n = self.new("m", "map")
        n.inputs = list(taps)
        n.sets = map_sets(self.rng, n.name)
        rng = self.rng
        if rng.random() < 0.2:
            n.rename = {"note": "memo"}
        if rng.random() < 0.2:
            n.drop = ["price"]
        if rng.random() < 0.1:
            n.keep = BASE_FIELDS + [f for f, _ in n.sets if f not in BASE_FIELDS]
        return n

    def add_route(self, tap, nroutes=None):
        n = self.new("r", "route")
        n.inputs = [tap]
        k = nroutes or self.rng.randrange(1, 4)
        names = ["eu", "big", "odd", "hot"][:k]
        n.routes = [(nm, condition(self.rng, False)) for nm in names]
        for nm in names + ["_unmatched"]:
            t = "%s.%s" % (n.name, nm)
            n.outputs.append(t)
            self.tap_owner[t] = (n, len(n.outputs) - 1)
        return n

    def add_sink(self, taps, db=None, table=None):
        n = self.new("k", "sink")
        n.inputs = list(taps)
        n.db = db or self.rng.choice(self.dbs)
        n.table = table or self.rng.choice(self.tables)
        if self.distinct_tables:
            n.table = "t_" + n.name  # one table per sink (hunting other bugs)
        rng = self.rng
        if rng.random() < 0.8:
            n.opts["batch"] = "{ max_records: %d, max_wait: %s }" % (
                rng.choice([10, 100, 700, 5000]), rng.choice(["1ms", "10ms", "100ms"]))
        return n

    def build(self, args):
        rng = self.rng
        s1 = self.new("s", "source")
        s1.glob = "data/a-*"
        self.sources = [s1]
        if rng.random() < 0.5 and "data/b-*" in self.files:
            s2 = self.new("s", "source")
            s2.glob = "data/b-*"
            self.sources.append(s2)
        motifs = args.motifs.split(",") if args.motifs else MOTIFS
        size = args.size or rng.randrange(1, args.max_size + 1)
        for _ in range(size):
            getattr(self, "motif_" + rng.choice(motifs))()
        # Every leaf must reach a sink: group the leaves into sinks.
        leaves = [n for n in self.nodes if n.kind != "sink" and not any(
            self.consumers(t) for t in n.outputs)]
        rng.shuffle(leaves)
        while leaves:
            k = rng.randrange(1, 4)
            group, leaves = leaves[:k], leaves[k:]
            taps = []
            for n in group:
                if n.kind == "route":
                    # The route itself, or some of its outputs.
                    outs = n.outputs[1:]
                    taps += rng.sample(outs, rng.randrange(1, len(outs) + 1)) \
                        if rng.random() < 0.8 else [n.name]
                else:
                    taps.append(n.name)
            self.add_sink(taps)
        if args.dead_letter != "random":
            self.dead = args.dead_letter
        else:
            self.dead = rng.choice(["none", "same", "same", "other_db", "file"])
        sink_dbs = sorted({n.db for n in self.nodes if n.kind == "sink"})
        self.dead_db = None
        if self.dead == "same":
            self.dead_db = rng.choice(sink_dbs)
        elif self.dead == "other_db":
            self.dead_db = "out/dead.db"
        self.dead_file = "out/dead.jsonl" if self.dead == "file" else None

    # -- motifs --

    def motif_chain(self):
        tap = self.pick_tap()
        for _ in range(self.rng.randrange(1, 4)):
            n = self.add_filter(tap) if self.rng.random() < 0.5 else self.add_map([tap])
            tap = n.name

    def motif_fanout(self):
        tap = self.pick_tap()
        for _ in range(self.rng.randrange(3, 7)):
            n = self.add_map([tap])
            if self.rng.random() < 0.3:
                self.add_sink([n.name])

    def motif_route(self):
        r = self.add_route(self.pick_tap())
        for t in r.outputs[1:]:
            x = self.rng.random()
            if x < 0.4:
                self.add_map([t])
            elif x < 0.6:
                self.add_sink([t])
            # else: nobody reads it (dropped), unless the leaf pass adds a sink

    def motif_diamond(self):
        """A route's outputs merged again: a record on both paths is written
        twice (one copy per path)."""
        r = self.add_route(self.pick_tap(), nroutes=self.rng.randrange(2, 4))
        branches = []
        for t in r.outputs[1:]:
            if self.rng.random() < 0.5:
                branches.append(self.add_map([t]).name)
            else:
                branches.append(t)
        k = self.rng.randrange(2, len(branches) + 1)
        merged = self.rng.sample(branches, k)
        if self.rng.random() < 0.5:
            self.add_map(merged)  # fan-in stage, continues as a tap
        else:
            self.add_sink(merged)

    def arrivals(self, tap):
        """Paths from the sources to tap."""
        node = self.tap_owner[tap][0]
        return 1 if node.kind == "source" else sum(self.arrivals(t) for t in node.inputs)

    def motif_full_diamonds(self):
        """Full-copy diamonds one after the other: a tap read by two maps
        merged again by a third, 1 to 3 times. Each doubles the paths and
        every map copies the batch it shares (the memory plan's worst case,
        issue 6); at most 16 paths here, so that other motifs still fit
        under the loader's 64."""
        tap = self.pick_tap()
        k = self.rng.randrange(1, 4)
        while k > 1 and self.arrivals(tap) << k > 16:
            k -= 1
        for _ in range(k):
            a, b = self.add_map([tap]), self.add_map([tap])
            tap = self.add_map([a.name, b.name]).name

    def motif_fanin(self):
        a = self.pick_tap()
        b = self.pick_tap(exclude=(a,))
        if b is not None:
            self.add_map([a, b])

    def motif_same_table(self):
        a = self.pick_tap()
        b = self.pick_tap(exclude=(a,)) or a
        db, table = self.rng.choice(self.dbs), self.rng.choice(self.tables)
        if self.rng.random() < 0.5:
            a = self.add_map([a]).name
        self.add_sink([a], db, table)
        self.add_sink([b], db, table)

    def motif_twin_sources(self):
        """Two sources reading the same files, filtered differently, into one
        table (one sink reading both, or one sink each)."""
        src = self.rng.choice(self.sources)
        t = self.new("s", "source")
        t.glob = src.glob
        self.sources.append(t)
        fa = self.add_filter(src.name)
        fb = self.add_filter(t.name)
        db, table = self.rng.choice(self.dbs), self.rng.choice(self.tables)
        if self.rng.random() < 0.5:
            self.add_sink([fa.name, fb.name], db, table)
        else:
            self.add_sink([fa.name], db, table)
            self.add_sink([fb.name], db, table)

    def motif_direct(self):
        self.add_sink([self.rng.choice(self.sources).name])

    # -- YAML --

    def yaml(self):
        out = ["engine: { threads: %d, memory_limit: %dMiB }" % (self.threads,
                                                                  self.memory_limit // MIB)]
        sections = [("sources", ["source"]), ("stages", ["filter", "map", "route"]),
                    ("sinks", ["sink"])]
        for title, kinds in sections:
            out.append(title + ":")
            for n in self.ordered():
                if n.kind not in kinds:
                    continue
                out.append("  %s:" % n.name)
                if n.kind == "source":
                    out.append("    type: file")
                    out.append("    path: '%s'" % n.glob)
                else:
                    out.append("    type: %s" % ("sqlite" if n.kind == "sink" else n.kind))
                    out.append("    inputs: [%s]" % ", ".join(n.inputs))
                if n.kind == "filter":
                    out.append("    where: '%s'" % n.cond.text)
                elif n.kind == "map":
                    out.append("    set:")
                    for f, e in n.sets:
                        out.append("      %s: '%s'" % (f, e.text))
                    if n.rename:
                        out.append("    rename: { %s }" % ", ".join(
                            "%s: %s" % kv for kv in n.rename.items()))
                    if n.drop:
                        out.append("    drop: [%s]" % ", ".join(n.drop))
                    if n.keep is not None:
                        out.append("    keep: [%s]" % ", ".join(n.keep))
                elif n.kind == "route":
                    out.append("    routes:")
                    for nm, e in n.routes:
                        out.append("      %s: '%s'" % (nm, e.text))
                elif n.kind == "sink":
                    out.append("    path: %s" % n.db)
                    out.append("    table: %s" % n.table)
                for k, v in n.opts.items():
                    out.append("    %s: %s" % (k, v))
        if self.dead_db:
            out.append("dead_letter: { type: sqlite, path: %s, table: rejects }" % self.dead_db)
        elif self.dead_file:
            out.append("dead_letter: { type: file, path: %s }" % self.dead_file)
        return "\n".join(out) + "\n"

    # -- graph facts the model needs --

    def ordered(self):
        """The nodes in the order sluice numbers them: sources, stages,
        sinks, each in file order (as yaml() writes them)."""
        rank = {"source": 0, "filter": 1, "map": 1, "route": 1, "sink": 2}
        return sorted(self.nodes, key=lambda n: rank[n.kind])  # stable

    def out_consumers(self, node, o):
        """The nodes reading output o of node, in sluice's order (built once
        the pipeline is complete)."""
        if not hasattr(self, "_cons"):
            self._cons = {}
            for n in self.ordered():
                for t in n.inputs:
                    self._cons.setdefault(t, []).append(n)
        return self._cons.get(node.outputs[o], [])

    def dl_owner(self, node):
        """The sink that writes dead letters made at node: the first consumer
        of the first consumed output (README "Dead letters")."""
        while node.kind != "sink":
            for o in range(len(node.outputs)):
                cs = self.out_consumers(node, o)
                if cs:
                    node = cs[0]
                    break
        return node

    def paths(self, node, sink):
        if node is sink:
            return 1
        return sum(self.paths(c, sink) for o in range(len(node.outputs))
                   for c in self.out_consumers(node, o))

    def copies(self, src, node, memo=None):
        """Copies per level (a list of 10) of each batch of source src that
        node emits, as conf_dag.c counts them: one per path, and a node with
        a priority gives the sum over the levels it receives to each level
        it may give."""
        memo = {} if memo is None else memo
        if node.name in memo:
            return memo[node.name]
        c = [0] * 10
        if node is src:
            c[0] = 1
        elif node.kind != "source":
            for t in node.inputs:
                up = self.copies(src, self.tap_owner[t][0], memo)
                c = [x + y for x, y in zip(c, up)]
        if node.kind != "sink" and node.levels:
            total = sum(c)
            c = [total if lv in node.levels else 0 for lv in range(10)]
        memo[node.name] = c
        return c

    def most_copies(self):
        """The most copies at one level from one source to one sink."""
        most = 0
        for s in [n for n in self.nodes if n.kind == "source"]:
            memo = {}
            for k in [n for n in self.nodes if n.kind == "sink"]:
                most = max(most, max(self.copies(s, k, memo)))
        return most

    def upstream(self, node):
        """node and every node with a path to it."""
        seen, todo = set(), [node]
        while todo:
            n = todo.pop()
            if n.name not in seen:
                seen.add(n.name)
                todo += [self.tap_owner[t][0] for t in n.inputs]
        return seen

    def may_shed(self, nodes):
        """Whether some record on its way to one of nodes may be shed (a
        when_full other than block there or before)."""
        return any("when_full" in self.by_name[u].opts for n in nodes for u in self.upstream(n))

    def dead_exactly_once(self, owner):
        """Dead letters are exactly once when the store is a SQLite table in
        the owner's file, however many paths lead there: each dead letter
        travels on the first path only."""
        return self.dead_db == owner.db


# ==== The model ====


_TAG = {int: "i", float: "f", str: "s", bytes: "b"}


def canon(rec):
    """A row as a hashable, type-exact tuple of its non-null fields (a bool
    is the int SQLite stores for it)."""
    return tuple(sorted(
        (k, ("i", int(v)) if v is True or v is False else (_TAG[type(v)], v))
        for k, v in rec.items() if v is not None))


class Model:
    def __init__(self, pl, data):
        self.pl = pl
        self.tables = collections.defaultdict(collections.Counter)  # (db, table) -> rows
        # (node, source, file, line) -> [owner sink, visits]: a record that
        # reaches a node by several paths is rejected there once per path.
        self.dead = {}
        for s in [n for n in pl.nodes if n.kind == "source"]:
            for path in pl.files[s.glob]:
                fname = os.path.basename(path)
                for ln, rec in data[path]:
                    ctx = (s.name, fname, ln)
                    if rec is None:
                        self.dl(s, ctx)
                    else:
                        self.out(s, 0, dict(rec), ctx)

    def dl(self, node, ctx):
        entry = self.dead.setdefault((node.name, ctx[0], ctx[1], ctx[2]),
                                     [self.pl.dl_owner(node), 0])
        entry[1] += 1

    def out(self, node, o, rec, ctx):
        for c in self.pl.out_consumers(node, o):
            self.push(c, dict(rec), ctx)

    def push(self, node, rec, ctx):
        line = ctx[2]
        if node.kind == "sink":
            self.tables[(node.db, node.table)][canon(rec)] += 1
        elif node.kind == "filter":
            try:
                v = node.cond(rec, line)
            except EvalError:
                return self.dl(node, ctx)
            if v is True:
                self.out(node, 0, rec, ctx)
            elif v is not False and v is not None:
                self.dl(node, ctx)  # not a bool
        elif node.kind == "map":
            try:
                for f, e in node.sets:
                    rec[f] = e(rec, line)
            except EvalError:
                return self.dl(node, ctx)
            for a, b in node.rename.items():
                if a in rec:
                    rec[b] = rec.pop(a)
            for f in node.drop:
                rec.pop(f, None)
            if node.keep is not None:
                rec = {k: v for k, v in rec.items() if k in node.keep}
            self.out(node, 0, rec, ctx)
        elif node.kind == "route":
            try:
                hits = [i for i, (_, e) in enumerate(node.routes) if e(rec, line) is True]
            except EvalError:
                return self.dl(node, ctx)
            self.out(node, 0, rec, ctx)
            for i in hits or [len(node.routes)]:
                self.out(node, 1 + i, rec, ctx)


# ==== Reading what sluice wrote ====


def read_table(path, table):
    """Counter of canonical rows, or None when the table does not exist."""
    if not os.path.exists(path):
        return None
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        cur = db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?",
                         (table,))
        if cur.fetchone() is None:
            return None
        cur = db.execute('SELECT * FROM "%s"' % table)
        cols = [d[0] for d in cur.description]
        return collections.Counter(canon(dict(zip(cols, row))) for row in cur)
    finally:
        db.close()


def read_raw(path, table):
    """(columns, Counter of raw rows): cheap and exact, for the replay check."""
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        cur = db.execute('SELECT * FROM "%s"' % table)
        return (tuple(d[0] for d in cur.description), collections.Counter(cur))
    finally:
        db.close()


def list_tables(path):
    if not os.path.exists(path):
        return []
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        return [r[0] for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '_sluice_%'")]
    finally:
        db.close()


def dead_key(d):
    return (d.get("_node"), d.get("_source"), os.path.basename(str(d.get("_file"))),
            d.get("_line"))


def read_dead(pl, work):
    """Counter of dead-letter keys in the store (None: no store)."""
    if pl.dead_db:
        db_path = os.path.join(work, pl.dead_db)
        if not os.path.exists(db_path):
            return collections.Counter()
        db = sqlite3.connect("file:%s?mode=ro" % db_path, uri=True)
        try:
            if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'rejects'").fetchone() is None:
                return collections.Counter()
            cur = db.execute("SELECT * FROM rejects")
            cols = [d[0] for d in cur.description]
            return collections.Counter(dead_key(dict(zip(cols, r))) for r in cur)
        finally:
            db.close()
    if pl.dead_file:
        c = collections.Counter()
        if os.path.exists(os.path.join(work, pl.dead_file)):
            with open(os.path.join(work, pl.dead_file), errors="replace") as f:
                for line in f:
                    try:
                        c[dead_key(json.loads(line))] += 1
                    except (ValueError, AttributeError):
                        # A torn or glued line (a kill during a write).
                        c[("<not a JSON object>", line[:100])] += 1
        return c
    return None


def snapshot(pl, work):
    snap = {}
    for db in sorted({n.db for n in pl.nodes if n.kind == "sink"} |
                     ({pl.dead_db} if pl.dead_db else set())):
        path = os.path.join(work, db)
        for t in list_tables(path):
            snap[(db, t)] = read_raw(path, t)
    dead_file = pl.dead_file and os.path.join(work, pl.dead_file)
    if dead_file and os.path.exists(dead_file):
        with open(dead_file, "rb") as f:
            snap[("file", pl.dead_file)] = f.read()
    return snap


# ==== Running sluice ====


class Run:
    """sluice run under /usr/bin/time (peak RSS), killable with SIGKILL."""

    def __init__(self, sluice, work, n):
        self.rss_file = os.path.join(work, "rss-%d" % n)
        self.err_file = os.path.join(work, "run-%d.err" % n)
        self.use_time = os.access("/usr/bin/time", os.X_OK)
        cmd = [sluice, "run", "p.yaml", "--quiet"]
        if self.use_time:
            cmd = ["/usr/bin/time", "-f", "%M", "-o", self.rss_file] + cmd
        self.err = open(self.err_file, "wb")
        self.proc = subprocess.Popen(cmd, cwd=work, stdout=subprocess.DEVNULL, stderr=self.err)
        self.start = time.monotonic()
        self.rss_kib = None
        self.rc = None

    def target_pid(self):
        """sluice's pid (the child of /usr/bin/time), None once it is gone."""
        if not self.use_time:
            return self.proc.pid
        p = "/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid)
        for _ in range(200):
            try:
                with open(p) as f:
                    kids = f.read().split()
            except OSError:
                return None
            if kids:
                return int(kids[0])
            if self.proc.poll() is not None:
                return None
            time.sleep(0.001)
        return None

    def kill9(self):
        pid = self.target_pid()
        if pid is None:
            return False
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return False
        return True

    def wait(self, timeout=None):
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pid = self.target_pid()
            if pid:
                try:  # keep a stack for the report when gdb is there
                    st = subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex",
                                         "thread apply all bt 8"], capture_output=True,
                                        text=True, timeout=60)
                    with open(self.err_file + ".stacks", "w") as f:
                        f.write(st.stdout)
                except (OSError, subprocess.TimeoutExpired):
                    pass
            self.kill9()
            self.proc.wait()
            self.err.close()
            return None
        self.err.close()
        self.elapsed = time.monotonic() - self.start
        rc = self.proc.returncode
        if self.use_time:
            # time prints "Command terminated by signal 9" before %M.
            try:
                with open(self.rss_file) as f:
                    lines = [x for x in f.read().split("\n") if x.strip()]
                self.rss_kib = int(lines[-1])
                if lines[0].startswith("Command terminated by signal"):
                    rc = -int(lines[0].split()[-1])
                elif lines[0].startswith("Command exited with non-zero status"):
                    rc = int(lines[0].split()[-1])
            except (OSError, ValueError, IndexError):
                pass
        self.rc = rc
        return rc


def stderr_tail(path, n=15):
    try:
        with open(path, errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return ""
    return "\n".join("      " + x for x in lines[-n:])


# ==== One seed ====


def fmt_row(row):
    return "{" + ", ".join("%s: %r" % (k, v[1]) for k, v in row) + "}"


def diff_counters(want, got, limit):
    missing = want - got
    extra = got - want
    lines = []
    dup = sum(c for r, c in extra.items() if r in want)
    unknown = sum(c for r, c in extra.items() if r not in want)
    lines.append("      want %d rows, got %d: %d missing, %d duplicated, %d unexpected" % (
        sum(want.values()), sum(got.values()), sum(missing.values()), dup, unknown))
    for r, c in sorted(missing.items())[:limit]:
        lines.append("      - missing x%d %s" % (c, fmt_row(r)))
    for r, c in sorted(extra.items())[:limit]:
        lines.append("      + extra   x%d %s" % (c, fmt_row(r)))
    return lines


def shape_summary(pl):
    kinds = collections.Counter(n.kind for n in pl.nodes)
    tables = collections.Counter((n.db, n.table) for n in pl.nodes if n.kind == "sink")
    shared = sum(1 for c in tables.values() if c > 1)
    multi = [n.name for n in pl.nodes if n.kind == "sink" and any(
        pl.paths(s, n) > 1 for s in pl.nodes if s.kind == "source")]
    prio = ["%s:%s" % (n.name, "".join(str(x) for x in sorted(n.levels)))
            for n in pl.nodes if n.levels is not None]
    return ("%d sources, %d filters, %d maps, %d routes, %d sinks (%d tables, %d shared, "
            "multi-path sinks: %s), dead letters: %s, priorities: %s (most copies at one "
            "level %d), threads %d, memory_limit %d MiB" % (
                kinds["source"], kinds["filter"], kinds["map"], kinds["route"], kinds["sink"],
                len(tables), shared, ",".join(multi) or "none", pl.dead,
                " ".join(prio) or "none", pl.most_copies(), pl.threads, pl.memory_limit // MIB))


ALL_FEATURES = ["fan-out", "fan-in", "diamond", "chained-diamonds", "route", "shared-table", "several-dbs",
                "twin-sources", "dead-letter-same", "dead-letter-other_db", "dead-letter-file",
                "priority-int", "priority-split", "kill -9"]


def features(pl):
    """The shapes this pipeline covers (tallied over a run of seeds)."""
    sinks = [n for n in pl.nodes if n.kind == "sink"]
    sources = [n for n in pl.nodes if n.kind == "source"]
    f = set()
    if any(len([n for n in pl.nodes if t in n.inputs]) >= 3 for t in pl.tap_owner):
        f.add("fan-out")
    if any(len(n.inputs) >= 2 for n in pl.nodes):
        f.add("fan-in")
    if any(pl.paths(s, k) > 1 for s in sources for k in sinks):
        f.add("diamond")
    if any(pl.paths(s, k) >= 4 for s in sources for k in sinks):
        f.add("chained-diamonds")
    if any(n.kind == "route" for n in pl.nodes):
        f.add("route")
    if len({(k.db, k.table) for k in sinks}) < len(sinks):
        f.add("shared-table")
    if len({k.db for k in sinks}) > 1:
        f.add("several-dbs")
    if len({s.glob for s in sources}) < len(sources):
        f.add("twin-sources")
    if pl.dead != "none":
        f.add("dead-letter-" + pl.dead)
    if any(n.levels is not None and len(n.levels) == 1 for n in pl.nodes):
        f.add("priority-int")
    if any(n.levels is not None and len(n.levels) > 1 for n in pl.nodes):
        f.add("priority-split")
    if any(sum(1 for n in pl.upstream(k) if pl.by_name[n].levels and
               len(pl.by_name[n].levels) > 1) >= 2 for k in sinks):
        f.add("priority-split-twice")
    return f


def make_data(rng, work, nrec):
    os.makedirs(os.path.join(work, "data"), exist_ok=True)
    data = {}
    files = collections.defaultdict(list)
    next_id = 1
    na = rng.randrange(1, 4)
    per = max(1, nrec // (na + 1))
    for i in range(na):
        p = "data/a-%d.jsonl" % i
        lines, next_id = gen_file(rng, os.path.join(work, p), rng.randrange(per // 2, per + 1),
                                  next_id)
        if i == 2 and shutil.which("lz4"):
            subprocess.run(["lz4", "-q", "--rm", p, p + ".lz4"], cwd=work, check=True)
            p += ".lz4"
        data[p] = lines
        files["data/a-*"].append(p)
    p = "data/b-0.jsonl"
    lines, next_id = gen_file(rng, os.path.join(work, p), per, next_id)
    data[p] = lines
    files["data/b-*"].append(p)
    for g in files:
        files[g].sort()  # sluice reads a glob in sorted (bytewise) order
    return data, files


def run_seed(seed, args):
    # Separate generators: the pipeline of a seed does not depend on the
    # amount of data (--records, $SCALE), nor the kills on either.
    work = os.path.join(args.work, "seed-%d" % seed)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    data, files = make_data(random.Random("data-%d" % seed), work, args.records)
    pl = Pipeline(random.Random("dag-%d" % seed), args, files)
    # Load shedding on some nodes, from a generator of its own so that the
    # shapes of the seeds stay what they were.
    shed_rng = random.Random("shed-%d" % seed)
    for n in pl.nodes:
        if n.kind != "source" and shed_rng.random() < args.shed:
            n.opts["when_full"] = shed_rng.choice(["drop_newest", "drop_oldest"])
    # Priorities, from a generator of their own too.
    prio_rng = random.Random("prio-%d" % seed)
    for n in pl.nodes:
        if n.kind != "sink" and prio_rng.random() < args.priority:
            n.opts["priority"], n.levels = priority(prio_rng, n)
    # The loader refuses an expression after another one (a split of the
    # parts of a split): keep the first of each chain.
    for n in pl.nodes:
        if n.levels is not None and len(n.levels) > 1 and any(
                u != n.name and pl.by_name[u].levels is not None and len(pl.by_name[u].levels) > 1
                for u in pl.upstream(n)):
            del n.opts["priority"]
            n.levels = None
    # The loader refuses more than 64 copies at one level (a split, an int
    # and diamonds): take the last expressions off until it fits.
    for n in reversed(pl.nodes):
        if pl.most_copies() <= 64:
            break
        if n.levels is not None and len(n.levels) > 1:
            del n.opts["priority"]
            n.levels = None
    rng = random.Random("kill-%d" % seed)
    yaml = pl.yaml()
    if args.list:
        print("seed %d: %s; covers %s" % (seed, shape_summary(pl), " ".join(sorted(features(pl)))))
        args.tally.update(features(pl))
        shutil.rmtree(work, ignore_errors=True)
        return []
    with open(os.path.join(work, "p.yaml"), "w") as f:
        f.write(yaml)
    model = Model(pl, data)
    nkills = rng.randrange(0, args.max_kills + 1) if args.kills is None else args.kills
    want_rows = sum(sum(c.values()) for c in model.tables.values())
    # Kill window: about the time sluice spends on this data (the fixed
    # ~0.25 s of start and stop is left out so most kills land mid-stream).
    nsrc = sum(1 for x in pl.nodes if x.kind == "source")
    window = args.kill_scale * (0.03 + 3e-6 * want_rows + 2e-6 * args.records * nsrc)
    delays = [rng.uniform(0.0, window) for _ in range(nkills)]

    failures = []  # (kind, message lines)
    rss_bound = pl.memory_limit // 1024 + RSS_SLACK_KIB
    rss = []
    log = []

    v = subprocess.run([args.sluice, "validate", "p.yaml"], cwd=work, capture_output=True,
                       text=True)
    if v.returncode != 0:
        failures.append(("config", ["validate exit %d: %s" % (v.returncode, v.stderr.strip())]))
        return report(seed, args, pl, yaml, work, failures, log)

    n = 0
    killed = 0
    for d in delays:
        n += 1
        r = Run(args.sluice, work, n)
        time.sleep(d)
        if r.kill9():
            killed += 1
        rc = r.wait(timeout=args.timeout)
        log.append("run %d: kill after %.3f s -> %s" % (n, d, rc))
        if r.rss_kib is not None:
            rss.append((r.rss_kib, n))
        if rc is None:
            failures.append(("hang", ["run %d did not finish in %d s (kill was due at %.3f s)"
                                      % (n, args.timeout, d), stderr_tail(r.err_file)]))
            return report(seed, args, pl, yaml, work, failures, log)
        if rc not in (0, -9):
            failures.append(("exit", ["run %d (to be killed at %.3f s) exited %s:" % (n, d, rc),
                                      stderr_tail(r.err_file)]))
        if rc == 0:
            break  # it finished first: more kills would only hit replays

    args.tally["kill -9"] += killed
    n += 1
    r = Run(args.sluice, work, n)
    rc = r.wait(timeout=args.timeout)
    log.append("run %d: to completion -> %s (%.2f s)" % (n, rc, getattr(r, "elapsed", -1)))
    if r.rss_kib is not None:
        rss.append((r.rss_kib, n))
    if rc is None:
        failures.append(("hang", ["final run %d did not finish in %d s" % (n, args.timeout),
                                  stderr_tail(r.err_file)]))
        return report(seed, args, pl, yaml, work, failures, log)
    if rc != 0:
        failures.append(("exit", ["final run %d exited %s:" % (n, rc), stderr_tail(r.err_file)]))

    # -- tables --
    sink_dbs = sorted({k.db for k in pl.nodes if k.kind == "sink"})
    for (db, table) in sorted(set(model.tables) | {(d, t) for d in sink_dbs
                                                    for t in list_tables(os.path.join(work, d))}):
        if db == pl.dead_db and table == "rejects":
            continue
        want = model.tables.get((db, table), collections.Counter())
        got = read_table(os.path.join(work, db), table) or collections.Counter()
        if pl.may_shed([k for k in pl.nodes if k.kind == "sink" and k.db == db
                        and k.table == table]):
            # Shed records are not written: what is must still be input,
            # once per path, never more.
            over = collections.Counter({r: c for r, c in got.items() if c > want.get(r, 0)})
            if over:
                failures.append(("rows", ["%s table %s (sheds upstream): rows beyond the "
                                          "input:" % (db, table)]
                                 + diff_counters(want & over, over, args.diff_rows)))
        elif want != got:
            failures.append(("rows", ["%s table %s (sinks %s):" % (db, table, ",".join(
                k.name for k in pl.nodes if k.kind == "sink" and k.db == db and k.table == table))]
                + diff_counters(want, got, args.diff_rows)))

    # -- dead letters --
    dead = read_dead(pl, work)
    snap = snapshot(pl, work)
    if dead is not None:
        msgs = []
        for key, (owner, want) in sorted(model.dead.items()):
            c = dead.get(key, 0)
            exact = killed == 0 or pl.dead_exactly_once(owner)
            # A record shed before the node that rejects it is not rejected.
            if c < want and not pl.may_shed([pl.by_name[key[0]]]):
                msgs.append("      - missing %d of %d %s (owner %s)" % (
                    want - c, want, key, owner.name))
            elif c > want and exact:
                msgs.append("      + x%d (want %d) %s (owner %s, exactly once: %s)" % (
                    c, want, key, owner.name, "yes" if pl.dead_exactly_once(owner) else
                    "no kill happened"))
        for key in sorted(set(dead) - set(model.dead), key=str):
            msgs.append("      + unexpected x%d %s" % (dead[key], key))
        if msgs:
            failures.append(("dead", ["dead letters (%s): want %d distinct, got %d distinct, "
                                      "%d in all; %d problems:" % (
                                          pl.dead_db or pl.dead_file, len(model.dead),
                                          len(dead), sum(dead.values()), len(msgs))]
                             + msgs[: args.diff_rows * 2]))

    # -- replay writes nothing --
    n += 1
    r = Run(args.sluice, work, n)
    rc = r.wait(timeout=args.timeout)
    log.append("run %d: replay -> %s" % (n, rc))
    if r.rss_kib is not None:
        rss.append((r.rss_kib, n))
    if rc != 0:
        failures.append(("replay", ["replay run %d exited %s:" % (n, rc),
                                    stderr_tail(r.err_file)]))
    else:
        snap2 = snapshot(pl, work)
        for key in sorted(set(snap) | set(snap2), key=str):
            a, b = snap.get(key), snap2.get(key)
            if a != b:
                lines = ["replay changed %s %s (want: before it, got: after it):" % key]
                if key[0] != "file":
                    a, b = a or ((), collections.Counter()), b or ((), collections.Counter())
                    if a[0] != b[0]:
                        lines.append("      columns %s -> %s" % (a[0], b[0]))
                    else:
                        lines += diff_counters(
                            collections.Counter({canon(dict(zip(a[0], r))): c
                                                 for r, c in a[1].items()}),
                            collections.Counter({canon(dict(zip(b[0], r))): c
                                                 for r, c in b[1].items()}), args.diff_rows)
                failures.append(("replay", lines))

    # -- peak RSS --
    if rss and not args.no_rss:
        peak, which = max(rss)
        if peak > rss_bound:
            failures.append(("rss", ["peak RSS %d KiB (run %d) > memory_limit %d MiB + 16 MiB"
                                     " = %d KiB; all runs: %s" % (
                                         peak, which, pl.memory_limit // MIB, rss_bound,
                                         " ".join(str(x[0]) for x in rss))]))
    log.append("%d rows; killed %d of %d; peak RSS %s KiB (bound %d)" % (
        want_rows, killed, len(delays), max(rss)[0] if rss else "?", rss_bound))
    return report(seed, args, pl, yaml, work, failures, log)


def report(seed, args, pl, yaml, work, failures, log):
    shape = shape_summary(pl)
    args.tally.update(features(pl))
    if not failures:
        if args.verbose:
            print("seed %d: ok: %s; %s; covers %s" % (seed, shape, "; ".join(log),
                                                       " ".join(sorted(features(pl)))))
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        return []
    kinds = sorted({k for k, _ in failures})
    out = ["", "=" * 72,
           "FAIL seed %d: %s" % (seed, " ".join(kinds)),
           "  shape: " + shape,
           "  runs: " + "; ".join(log),
           "  reproduce (kill moments vary): cd %s && python3 tests/integration/random_dag.py"
           " --seed %d %s --sluice %s" % (ROOT, seed, " ".join(args.repro), args.sluice),
           "  work dir (kept): " + work,
           "  pipeline:"]
    out += ["    " + x for x in yaml.rstrip("\n").split("\n")]
    for kind, lines in failures:
        if kind == "rss":
            out.append("  RSS BOUND EXCEEDED (memory bound, reported apart from the data"
                       " checks):")
        else:
            out.append("  [%s]" % kind)
        out += ["    " + x if not x.startswith("      ") else x for x in lines]
    print("\n".join(out), flush=True)
    return kinds


def parse_seeds(s):
    seeds = []
    for part in s.split(","):
        if "-" in part:
            a, b = part.split("-")
            seeds += list(range(int(a), int(b) + 1))
        else:
            seeds.append(int(part))
    return seeds


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, help="one seed")
    ap.add_argument("--seeds", help="seeds: 1-20 or 3,7,9")
    ap.add_argument("--sluice", default=os.environ.get("SLUICE", "build/sluice"))
    ap.add_argument("--records", type=int, default=6000, help="about this many input lines")
    ap.add_argument("--max-size", type=int, default=5, help="most motifs per pipeline")
    ap.add_argument("--size", type=int, help="exactly this many motifs")
    ap.add_argument("--motifs", help="comma-separated subset of: " + ",".join(MOTIFS))
    ap.add_argument("--dead-letter", default="random",
                    choices=["random", "none", "same", "other_db", "file"])
    ap.add_argument("--max-kills", type=int, default=3)
    ap.add_argument("--kills", type=int, help="exactly this many kill -9 runs")
    ap.add_argument("--kill-scale", type=float, default=1.0,
                    help="stretch the kill window (slow builds)")
    ap.add_argument("--timeout", type=int, default=120, help="seconds per run (hang)")
    ap.add_argument("--work", help="work directory (default: a new one in /tmp)")
    ap.add_argument("--keep", action="store_true", help="keep work dirs of passing seeds")
    ap.add_argument("--no-rss", action="store_true", help="skip the peak RSS check")
    ap.add_argument("--shed", type=float, default=0.15,
                    help="share of stages and sinks given a shedding when_full")
    ap.add_argument("--priority", type=float, default=0.25,
                    help="share of sources and stages given a priority (int or expression)")
    ap.add_argument("--distinct-tables", action="store_true",
                    help="one table per sink: no two sinks share a table")
    ap.add_argument("--diff-rows", type=int, default=8)
    ap.add_argument("--fail-fast", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--require-shapes", action="store_true",
                    help="fail unless the seeds cover every shape and some kill -9 happened")
    ap.add_argument("--list", action="store_true",
                    help="only print each seed's pipeline shape, run nothing")
    args = ap.parse_args()
    if args.seed is None and args.seeds is None:
        ap.error("give --seed or --seeds")
    seeds = [args.seed] if args.seed is not None else parse_seeds(args.seeds)
    args.sluice = os.path.abspath(args.sluice)
    if not os.access(args.sluice, os.X_OK):
        ap.error("no sluice binary at %s (set SLUICE or --sluice)" % args.sluice)
    args.work = args.work or tempfile.mkdtemp(prefix="sluice-random-dag.")
    os.makedirs(args.work, exist_ok=True)
    # What to repeat besides the seed to reproduce a failure.
    args.repro = ["--records %d" % args.records]
    for opt in ("size", "motifs", "kills"):
        if getattr(args, opt) is not None:
            args.repro.append("--%s %s" % (opt, getattr(args, opt)))
    if args.max_size != 5:
        args.repro.append("--max-size %d" % args.max_size)
    if args.max_kills != 3 and args.kills is None:
        args.repro.append("--max-kills %d" % args.max_kills)
    if args.dead_letter != "random":
        args.repro.append("--dead-letter " + args.dead_letter)
    if args.distinct_tables:
        args.repro.append("--distinct-tables")
    if args.priority != 0.25:
        args.repro.append("--priority %g" % args.priority)
    if args.shed != 0.15:
        args.repro.append("--shed %g" % args.shed)
    if args.no_rss:
        args.repro.append("--no-rss")
    if args.kill_scale != 1.0:
        args.repro.append("--kill-scale %g" % args.kill_scale)

    t0 = time.monotonic()
    args.tally = collections.Counter()
    failed = {}
    for seed in seeds:
        try:
            kinds = run_seed(seed, args)
        except Exception:  # a harness bug must not hide the other seeds
            import traceback
            print("\nHARNESS ERROR seed %d:\n%s" % (seed, traceback.format_exc()), flush=True)
            kinds = ["harness"]
        if kinds:
            failed[seed] = kinds
            if args.fail_fast:
                break
    dt = time.monotonic() - t0
    print("", flush=True)
    print("random DAG: %d seeds, %d failed, %.1f s (work dir %s)" % (
        len(seeds), len(failed), dt, args.work))
    print("  shapes covered (seeds): " + ", ".join(
        "%s %d" % kv for kv in sorted(args.tally.items())))
    for seed, kinds in failed.items():
        print("  seed %d: %s" % (seed, " ".join(kinds)))
    uncovered = []
    if args.require_shapes:
        uncovered = [f for f in ALL_FEATURES if not args.tally.get(f)]
        if uncovered:
            print("FAIL: these seeds do not cover: " + ", ".join(uncovered))
    if not failed and not args.keep:
        shutil.rmtree(args.work, ignore_errors=True)
    return 1 if failed or uncovered else 0


if __name__ == "__main__":
    sys.exit(main())
