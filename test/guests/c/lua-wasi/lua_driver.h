/* Shared by the Lua drivers (c/lua_main.c and bench/lua_bench.c): the hook lua_wasi.h makes Lua
 * call instead of longjmp. There is no setjmp in this wasi-libc, so a Lua error cannot be caught:
 * print it and abort. Include it in exactly one translation unit of a program (the driver). */
#ifndef MVVM_LUA_DRIVER_H
#define MVVM_LUA_DRIVER_H

#include <stdio.h>
#include <stdlib.h>

#include "lauxlib.h"
#include "lua.h"

void mvvm_lua_throw(struct lua_State *L, int status) {
    const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "(no message)";
    fflush(stdout);
    fprintf(stderr, "lua: unrecoverable error (status %d): %s\n", status, msg);
    abort();
}

#endif
