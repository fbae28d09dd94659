/* Shared by the SQLite drivers (c/sqlite_main.c and bench/sqlite_bench.c): the open database,
 * exiting on an error, running statements, and printing a query's rows. Header-only: every
 * function is static, and each driver is one translation unit. */
#ifndef MVVM_SQLITE_DRIVER_H
#define MVVM_SQLITE_DRIVER_H

#include <stdio.h>
#include <stdlib.h>

#include "sqlite3.h"

static sqlite3 *db;

static void die(const char *what) {
    printf("sqlite error in %s: %s\n", what, sqlite3_errmsg(db));
    exit(1);
}

static void exec(const char *sql) {
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        printf("sqlite error: %s\n  in: %s\n", err ? err : "?", sql);
        exit(1);
    }
}

static sqlite3_stmt *prepare(const char *sql) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) die(sql);
    return st;
}

/* runs a query and prints a header line and each row, columns joined by '|' */
static void query(const char *title, const char *sql) {
    sqlite3_stmt *st = prepare(sql);
    printf("-- %s\n", title);
    int rows = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int nc = sqlite3_column_count(st);
        for (int i = 0; i < nc; i++) {
            const unsigned char *t = sqlite3_column_text(st, i);
            printf("%s%s", i ? "|" : "", t ? (const char *)t : "NULL");
        }
        printf("\n");
        rows++;
    }
    if (rc != SQLITE_DONE) die(title);
    sqlite3_finalize(st);
    printf("(%d rows)\n", rows);
}

#endif
