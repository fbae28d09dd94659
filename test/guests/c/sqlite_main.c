/* sqlite_main.c -- our driver for the SQLite amalgamation (sqlite3.c from the
 * libsqlite3-sys crate). Creates two tables, inserts 2000 rows in one
 * transaction through a prepared statement, runs aggregates (COUNT, SUM,
 * GROUP BY, ORDER BY ... LIMIT, a JOIN, a window function, a recursive CTE),
 * an UPDATE and a DELETE, and prints every result row.
 *   sqlite_main.wasm          -> database ":memory:"
 *   sqlite_main.wasm file     -> database /data/test.db (needs --dir HOST::/data)
 * stdout is identical in both modes; the SQLite version goes to stderr only.
 * Exits 0, or 1 on any SQLite error. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sqlite_driver.h"

static uint32_t seed = 20240601u;
static uint32_t lcg(void) {
    seed = seed * 1664525u + 1013904223u;
    return seed >> 8;
}

int main(int argc, char **argv) {
    const char *path = ":memory:";
    if (argc > 1 && strcmp(argv[1], "file") == 0) {
        path = "/data/test.db";
        unlink(path);
        unlink("/data/test.db-journal");
    }
    fprintf(stderr, "sqlite %s, db %s\n", sqlite3_libversion(), path);
    if (sqlite3_open(path, &db) != SQLITE_OK) die("open");

    exec("CREATE TABLE categories(id INTEGER PRIMARY KEY, label TEXT NOT NULL);"
         "CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT, category INTEGER"
         " REFERENCES categories(id), price REAL, qty INTEGER);");
    static const char *labels[] = {"tools", "books", "garden", "music", "toys", "food", "sport"};
    for (int i = 0; i < 7; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "INSERT INTO categories VALUES(%d, '%s');", i + 1, labels[i]);
        exec(sql);
    }

    exec("BEGIN");
    sqlite3_stmt *ins;
    if (sqlite3_prepare_v2(db, "INSERT INTO items(name, category, price, qty) VALUES(?,?,?,?)", -1, &ins,
                           NULL) != SQLITE_OK)
        die("prepare insert");
    for (int i = 0; i < 2000; i++) {
        char name[32];
        /* one lcg() call per statement: argument evaluation order is unspecified */
        int c1 = 'a' + (int)(lcg() % 26);
        int c2 = 'a' + (int)(lcg() % 26);
        snprintf(name, sizeof name, "item-%04u-%c%c", (unsigned)i, c1, c2);
        sqlite3_bind_text(ins, 1, name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(ins, 2, 1 + (int)(lcg() % 7));
        sqlite3_bind_double(ins, 3, (double)(lcg() % 100000) / 100.0);
        sqlite3_bind_int(ins, 4, (int)(lcg() % 50));
        if (sqlite3_step(ins) != SQLITE_DONE) die("insert");
        sqlite3_reset(ins);
    }
    sqlite3_finalize(ins);
    exec("COMMIT");
    exec("CREATE INDEX items_cat ON items(category, price)");

    query("totals", "SELECT COUNT(*), SUM(qty), printf('%.2f', SUM(price * qty)), MIN(price), MAX(price) FROM items");
    query("per category",
          "SELECT category, COUNT(*), SUM(qty), printf('%.3f', AVG(price)) FROM items"
          " GROUP BY category ORDER BY category");
    query("most expensive", "SELECT id, name, price FROM items ORDER BY price DESC, id LIMIT 5");
    query("join",
          "SELECT c.label, COUNT(i.id), printf('%.2f', SUM(i.price * i.qty)) AS revenue"
          " FROM categories c JOIN items i ON i.category = c.id"
          " GROUP BY c.label HAVING COUNT(i.id) > 250 ORDER BY revenue DESC");
    query("window",
          "SELECT category, name, price FROM (SELECT category, name, price,"
          " row_number() OVER (PARTITION BY category ORDER BY price, id) AS rn FROM items)"
          " WHERE rn = 1 ORDER BY category");
    query("cte",
          "WITH RECURSIVE fib(n, a, b) AS (SELECT 1, 0, 1 UNION ALL SELECT n + 1, b, a + b FROM fib WHERE n < 60)"
          " SELECT n, a FROM fib WHERE n % 15 = 0");
    query("like + substr", "SELECT COUNT(*), MIN(substr(name, 11)), MAX(substr(name, 11)) FROM items WHERE name LIKE '%-a%'");

    exec("UPDATE items SET qty = qty + 1 WHERE category = 3");
    printf("updated %d rows\n", sqlite3_changes(db));
    exec("DELETE FROM items WHERE price < 100");
    printf("deleted %d rows\n", sqlite3_changes(db));
    query("after update/delete", "SELECT COUNT(*), SUM(qty), printf('%.2f', SUM(price)) FROM items");
    query("integrity", "PRAGMA integrity_check");

    if (sqlite3_close(db) != SQLITE_OK) die("close");
    printf("sqlite: ok\n");
    return 0;
}
