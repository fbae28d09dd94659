/* sqlite_bench.c -- benchmark workload: our driver for the SQLite
 * amalgamation (sqlite3.c from the libsqlite3-sys crate, built exactly like
 * sqlite_main), on an in-memory database. With R = SCALE it
 *  - inserts 100 * R accounts and 2000 * R events in one transaction each
 *    through prepared statements (values from a LCG),
 *  - creates two indexes,
 *  - runs aggregates (COUNT/SUM/MIN/MAX, GROUP BY, a JOIN, ORDER BY ...
 *    LIMIT, a window function, LIKE), 300 * R indexed point queries through
 *    a prepared statement, an UPDATE with a correlated subquery and a DELETE,
 *    and PRAGMA integrity_check.
 * Amounts are integers (cents), so no floating point is summed; averages are
 * formatted by SQLite's own printf. Prints every result row.
 *   sqlite_bench.wasm [SCALE]   (default 1). Exits 0, or 1 on any SQLite error. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#include "../c/sqlite_driver.h"

static uint32_t seed = 20251122u;
static uint32_t lcg(void) {
    seed = seed * 1664525u + 1013904223u;
    return seed >> 8;
}

int main(int argc, char **argv) {
    long scale = bench_scale(argc, argv, "sqlite_bench");
    int accounts = (int)(100 * scale), events = (int)(2000 * scale), lookups = (int)(300 * scale);
    fprintf(stderr, "sqlite %s\n", sqlite3_libversion());
    if (sqlite3_open(":memory:", &db) != SQLITE_OK) die("open");
    printf("sqlite_bench scale=%ld accounts=%d events=%d lookups=%d\n", scale, accounts, events, lookups);

    exec("CREATE TABLE regions(id INTEGER PRIMARY KEY, name TEXT NOT NULL);"
         "CREATE TABLE accounts(id INTEGER PRIMARY KEY, name TEXT NOT NULL, region INTEGER REFERENCES regions(id),"
         " balance INTEGER NOT NULL);"
         "CREATE TABLE events(id INTEGER PRIMARY KEY, account INTEGER NOT NULL REFERENCES accounts(id),"
         " kind INTEGER NOT NULL, amount INTEGER NOT NULL, note TEXT);");
    static const char *regions[] = {"north", "south", "east", "west", "central", "islands"};
    for (int i = 0; i < 6; i++) {
        char sql[96];
        snprintf(sql, sizeof sql, "INSERT INTO regions VALUES(%d, '%s');", i + 1, regions[i]);
        exec(sql);
    }

    exec("BEGIN");
    sqlite3_stmt *ins = prepare("INSERT INTO accounts(id, name, region, balance) VALUES(?,?,?,0)");
    for (int i = 1; i <= accounts; i++) {
        char name[32];
        int c1 = 'a' + (int)(lcg() % 26);
        int c2 = 'a' + (int)(lcg() % 26);
        snprintf(name, sizeof name, "acct-%c%c-%06d", c1, c2, i);
        sqlite3_bind_int(ins, 1, i);
        sqlite3_bind_text(ins, 2, name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(ins, 3, 1 + (int)(lcg() % 6));
        if (sqlite3_step(ins) != SQLITE_DONE) die("insert account");
        sqlite3_reset(ins);
    }
    sqlite3_finalize(ins);
    exec("COMMIT");

    static const char *notes[] = {"deposit", "withdrawal", "fee", "interest", "transfer in", "transfer out",
                                  "refund", "adjustment"};
    exec("BEGIN");
    ins = prepare("INSERT INTO events(account, kind, amount, note) VALUES(?,?,?,?)");
    for (int i = 0; i < events; i++) {
        int kind = (int)(lcg() % 8);
        int account = 1 + (int)(lcg() % (uint32_t)accounts);
        int amount = (int)(lcg() % 500000) - (kind == 1 || kind == 2 || kind == 5 ? 400000 : 0);
        char note[48];
        snprintf(note, sizeof note, "%s #%u", notes[kind], (unsigned)(lcg() % 10000));
        sqlite3_bind_int(ins, 1, account);
        sqlite3_bind_int(ins, 2, kind);
        sqlite3_bind_int(ins, 3, amount);
        sqlite3_bind_text(ins, 4, note, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(ins) != SQLITE_DONE) die("insert event");
        sqlite3_reset(ins);
    }
    sqlite3_finalize(ins);
    exec("COMMIT");
    exec("CREATE INDEX events_account ON events(account, kind);"
         "CREATE INDEX accounts_region ON accounts(region)");

    query("totals", "SELECT COUNT(*), SUM(amount), MIN(amount), MAX(amount) FROM events");
    query("per kind",
          "SELECT kind, COUNT(*), SUM(amount), printf('%.2f', AVG(amount) / 100.0) FROM events"
          " GROUP BY kind ORDER BY kind");
    query("per region (join)",
          "SELECT r.name, COUNT(DISTINCT a.id), COUNT(e.id), SUM(e.amount) FROM regions r"
          " JOIN accounts a ON a.region = r.id JOIN events e ON e.account = a.id"
          " GROUP BY r.id ORDER BY SUM(e.amount) DESC, r.id");
    query("top accounts",
          "SELECT account, COUNT(*), SUM(amount) AS total FROM events GROUP BY account"
          " ORDER BY total DESC, account LIMIT 5");
    query("window",
          "SELECT kind, id, amount FROM (SELECT kind, id, amount,"
          " rank() OVER (PARTITION BY kind ORDER BY amount DESC, id) AS rk FROM events)"
          " WHERE rk <= 2 ORDER BY kind, rk");
    query("like", "SELECT COUNT(*), MIN(note), MAX(note) FROM events WHERE note LIKE 'transfer%#12%'");

    sqlite3_stmt *look = prepare("SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM events WHERE account = ? AND kind = ?");
    int64_t found = 0, sum = 0;
    for (int i = 0; i < lookups; i++) {
        sqlite3_bind_int(look, 1, 1 + (int)(lcg() % (uint32_t)accounts));
        sqlite3_bind_int(look, 2, (int)(lcg() % 8));
        if (sqlite3_step(look) != SQLITE_ROW) die("lookup");
        found += sqlite3_column_int64(look, 0);
        sum += sqlite3_column_int64(look, 1);
        sqlite3_reset(look);
    }
    sqlite3_finalize(look);
    printf("-- point lookups\n%d queries, %lld rows, sum %lld\n", lookups, (long long)found, (long long)sum);

    exec("UPDATE accounts SET balance = (SELECT COALESCE(SUM(amount), 0) FROM events WHERE account = accounts.id)");
    printf("updated %d rows\n", sqlite3_changes(db));
    query("balances",
          "SELECT COUNT(*), SUM(balance), MIN(balance), MAX(balance), SUM(balance < 0) FROM accounts");
    exec("DELETE FROM events WHERE kind = 2 AND amount < -200000");
    printf("deleted %d rows\n", sqlite3_changes(db));
    query("after delete", "SELECT COUNT(*), SUM(amount) FROM events");
    query("integrity", "PRAGMA integrity_check");

    if (sqlite3_close(db) != SQLITE_OK) die("close");
    printf("sqlite_bench: ok\n");
    return 0;
}
