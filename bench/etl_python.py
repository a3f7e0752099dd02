#!/usr/bin/env python3
"""The same ETL as bench/file_to_sqlite.yaml as a plain Python loop (json +
sqlite3 modules): keep amount > 0 and status != "test", add amount_cents =
round-half-away(amount * 100), drop tags and meta, insert in 10k-row
transactions. Usage: etl_python.py orders.jsonl out.db"""
import json
import sqlite3
import sys


def main():
    src, dst = sys.argv[1], sys.argv[2]
    db = sqlite3.connect(dst)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE IF NOT EXISTS orders(id, user, amount, country, status, ts, amount_cents)")
    batch = []
    with open(src, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            o = json.loads(line)
            a = o.get("amount")
            if not (isinstance(a, (int, float)) and a > 0 and o.get("status") != "test"):
                continue
            c = a * 100
            cents = int(c + 0.5) if c >= 0 else -int(-c + 0.5)
            batch.append((o["id"], o["user"], a, o["country"], o["status"], o["ts"], cents))
            if len(batch) >= 10000:
                db.executemany("INSERT INTO orders VALUES (?,?,?,?,?,?,?)", batch)
                db.commit()
                batch.clear()
    if batch:
        db.executemany("INSERT INTO orders VALUES (?,?,?,?,?,?,?)", batch)
        db.commit()
    db.close()


if __name__ == "__main__":
    main()
