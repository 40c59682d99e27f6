#!/usr/bin/env bash
# The README's main job on the embedded default: two SQLite databases, edited by the sqlite3
# CLI on both sides (the same field included), kept equal by `lockstep sync`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
lockstep=$(realpath "${LOCKSTEP:-$here/../build/release/src/cli/lockstep}")
demo=${DEMO_DIR:-$here/../build/demo}
rm -rf "$demo" && mkdir -p "$demo" && cd "$demo"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() {
  for db in "$@"; do
    echo "-- $db"
    sqlite3 -column -header "$db" \
      "SELECT id, name, city, credit FROM customers ORDER BY id;
       SELECT id, customer, item, qty FROM orders ORDER BY id;"
  done
}

step "the shop's database: customers and orders"
sqlite3 shop.db <<'SQL'
CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT NOT NULL, city TEXT, credit REAL);
CREATE TABLE orders(id INTEGER PRIMARY KEY, customer INTEGER REFERENCES customers(id),
                    item TEXT, qty INTEGER);
INSERT INTO customers VALUES (1, 'Ada', 'London', 100.0), (2, 'Grace', 'Arlington', 50.0),
                             (3, 'Edsger', 'Austin', 0.0);
INSERT INTO orders VALUES (1, 1, 'notebook', 2), (2, 2, 'compiler', 1);
SQL
show shop.db

step "lockstep sync shop.db laptop.db   (laptop.db does not exist yet)"
"$lockstep" sync shop.db laptop.db

step "both sides edit with the sqlite3 CLI while apart"
echo "shop:   Ada moves to Cambridge, Grace orders a debugger, Edsger is deleted"
sqlite3 shop.db "UPDATE customers SET city = 'Cambridge' WHERE id = 1;
                 INSERT INTO orders VALUES (3, 2, 'debugger', 1);
                 DELETE FROM customers WHERE id = 3;"
sleep 0.01
echo "laptop: Ada moves to Paris (the same field), Ada's credit goes up (another field)"
sqlite3 laptop.db "UPDATE customers SET city = 'Paris' WHERE id = 1;
                   UPDATE customers SET credit = 150.0 WHERE id = 1;"

step "lockstep sync shop.db laptop.db"
"$lockstep" sync shop.db laptop.db
show shop.db laptop.db

step "lockstep conflicts list laptop.db   (the losing value is kept)"
"$lockstep" conflicts list laptop.db

step "a second sync has nothing to do"
"$lockstep" sync shop.db laptop.db
